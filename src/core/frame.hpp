#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace btcstream {

/// The bytes of one SSE frame, serialised once and shared by every client.
/// They are kept as one HTTP/1.1 chunk (`<hex size>\r\n<text>\r\n`), so a
/// chunked stream writes a frame from one buffer with one `send`, and a
/// plain (HTTP/1.0) stream writes the text in its middle. One buffer, not
/// the chunk's three parts: the kernel charges ~0.35 µs more for a
/// three-part `sendmsg` than for one `send` (test/bench/send_cost.cpp).
class frame {
public:
  /// An empty text gives an empty chunk: no bytes (a zero-size chunk would
  /// end the stream).
  explicit frame(std::string_view text);

  /// The SSE text.
  std::string_view text() const noexcept {
    return std::string_view{bytes_}.substr(text_at_, text_size_);
  }
  /// The text as one HTTP/1.1 chunk.
  std::string_view chunk() const noexcept { return bytes_; }
  /// The text's size: what a frame counts against --client-queue.
  size_t size() const noexcept { return text_size_; }

private:
  std::string bytes_;
  size_t text_at_ = 0;
  size_t text_size_ = 0;
};

using frame_ptr = std::shared_ptr<const frame>;

inline frame_ptr make_frame(std::string_view text) {
  return std::make_shared<const frame>(text);
}

} // namespace btcstream
