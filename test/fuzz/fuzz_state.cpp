// (f) The state file (--state-file): what a single node reads at start,
// from a disk that may hold a truncated, corrupt or hand-edited file.
// `decode_state` must never crash, and either use the file whole or ignore
// it whole with a reason:
// - used (no error): the updates have ids > 0 in strictly increasing order,
//   timestamps that do not go back, a finite price > 0; none has expired
//   (ts >= now - ttl); at most `max_entries`, the newest. Written back with
//   `encode_state`, they read back exactly, none expired.
// - ignored (an error): no update at all.
//
// Input: a byte (low bit: the instrument is ETH-USD instead of BTC-USD),
// now (8 bytes, ms, kept below 2^42: the year 2109), ttl (4 bytes, ms, at
// least 1), max_entries (2 bytes), then the file's text.

#include "fuzz_common.hpp"

#include "core/state_file.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

using namespace btcstream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::reader in{data, size};
  const std::string instrument = in.take<uint8_t>() & 1 ? "ETH-USD" : "BTC-USD";
  const auto now_ms
      = static_cast<int64_t>(in.take<uint64_t>() & ((uint64_t{1} << 42) - 1));
  const std::chrono::milliseconds ttl{int64_t{in.take<uint32_t>()} + 1};
  const size_t max_entries = in.take<uint16_t>();
  const auto text = in.rest();

  auto r = decode_state(text, instrument, now_ms, ttl, max_entries);
  if (!r.error.empty()) {
    FUZZ_CHECK(r.updates.empty());
    return 0;
  }
  FUZZ_CHECK(r.updates.size() <= max_entries);
  uint64_t last_id = 0;
  int64_t last_ts = INT64_MIN;
  for (const auto& u : r.updates) {
    FUZZ_CHECK(u.id > last_id);
    FUZZ_CHECK(u.ts_ms >= last_ts);
    FUZZ_CHECK(u.ts_ms >= now_ms - ttl.count());
    FUZZ_CHECK(std::isfinite(u.price) && u.price > 0);
    last_id = u.id;
    last_ts = u.ts_ms;
  }
  auto again = decode_state(encode_state(instrument, r.updates), instrument,
                            now_ms, ttl, max_entries);
  FUZZ_CHECK(again.error.empty());
  FUZZ_CHECK(again.expired == 0);
  FUZZ_CHECK(again.updates == r.updates);
  return 0;
}
