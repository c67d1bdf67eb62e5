#include "core/frame.hpp"

#include <array>
#include <charconv>

namespace btcstream {

frame::frame(std::string_view text) : text_size_(text.size()) {
  if (text.empty())
    return;
  std::array<char, 2 * sizeof(size_t)> hex{};
  auto* end
      = std::to_chars(hex.data(), hex.data() + hex.size(), text.size(), 16).ptr;
  bytes_.reserve(static_cast<size_t>(end - hex.data()) + text.size() + 4);
  bytes_.append(hex.data(), end);
  bytes_ += "\r\n";
  text_at_ = bytes_.size();
  bytes_ += text;
  bytes_ += "\r\n";
}

} // namespace btcstream
