#include "core/event_id.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <vector>

using namespace btcstream;

TEST_CASE("the first id is the retrieval time in unix milliseconds") {
  // 2026-11-26T18:45:17.123Z, the example in DESIGN.md.
  CHECK(next_event_id(0, 1'795'718'717'123) == 1'795'718'717'123u);
}

TEST_CASE("a clock that moved forward gives its time") {
  CHECK(next_event_id(1000, 1001) == 1001u);
  CHECK(next_event_id(1000, 5000) == 5000u);
}

TEST_CASE("two updates in the same millisecond get consecutive ids") {
  CHECK(next_event_id(1000, 1000) == 1001u);
}

TEST_CASE("ids keep increasing while the clock jumps back") {
  // A manual clock: steady, stuck, one step back, a big jump back (NTP), a
  // recovery that is still behind, then real time again.
  const std::vector<int64_t> clock{1000, 1000, 999, 500, 1003, 2000, 2000};
  const std::vector<uint64_t> expected{1000, 1001, 1002, 1003,
                                       1004, 2000, 2001};
  uint64_t id = 0;
  std::vector<uint64_t> got;
  for (auto now : clock) {
    id = next_event_id(id, now);
    got.push_back(id);
  }
  CHECK(got == expected);
}

TEST_CASE("a clock before 1970 gives the previous id plus one") {
  CHECK(next_event_id(5, -1) == 6u);
  CHECK(next_event_id(0, 0) == 1u);
  CHECK(next_event_id(0, std::numeric_limits<int64_t>::min()) == 1u);
}

TEST_CASE("the largest clock value is used as is") {
  auto max = std::numeric_limits<int64_t>::max();
  CHECK(next_event_id(1, max) == static_cast<uint64_t>(max));
}

TEST_CASE("the id saturates instead of wrapping to zero") {
  auto max = std::numeric_limits<uint64_t>::max();
  CHECK(next_event_id(max - 1, 0) == max);
  CHECK(next_event_id(max, 0) == max);
}
