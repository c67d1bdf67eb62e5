#pragma once

// Shared by the fuzz targets: a check that aborts (a libFuzzer crash, a
// failed replay) and a reader that takes typed values off the input.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,         \
                   __LINE__, #cond);                                           \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace fuzz {

/// Takes fixed-size values off the front of the input; zeros once it runs
/// out, so every input is usable.
class reader {
public:
  reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  template<class T>
  T take() {
    T v{};
    unsigned char buf[sizeof(T)] = {};
    auto n = size_ < sizeof(T) ? size_ : sizeof(T);
    if (n > 0)
      std::memcpy(buf, data_, n);
    std::memcpy(&v, buf, sizeof(T));
    data_ += n;
    size_ -= n;
    return v;
  }

  /// Up to `n` bytes.
  std::string take_string(size_t n) {
    if (n > size_)
      n = size_;
    std::string s(reinterpret_cast<const char*>(data_), n);
    data_ += n;
    size_ -= n;
    return s;
  }

  /// Whatever is left.
  std::string rest() { return take_string(size_); }

  size_t left() const { return size_; }

private:
  const uint8_t* data_;
  size_t size_;
};

inline bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

/// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 2;
      if (c == 0xE0)
        lo = 0xA0;
      if (c == 0xED)
        hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 3;
      if (c == 0xF0)
        lo = 0x90;
      if (c == 0xF4)
        hi = 0x8F;
    } else {
      return false;
    }
    for (size_t k = 1; k <= len; ++k) {
      if (i + k >= s.size())
        return false;
      auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
        return false;
    }
    i += len + 1;
  }
  return true;
}

} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
