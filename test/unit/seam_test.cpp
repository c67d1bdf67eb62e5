#include "core/seam.hpp"

#include "core/ring_buffer.hpp"
#include "core/sse.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

stored make(uint64_t id) {
  update u{id, static_cast<int64_t>(id) * 1000, 97000.5};
  return stored{u, encode_update(u), 0, nullptr};
}

// Each frame by its `id:` value, "gap" for a gap event.
std::vector<std::string> names(const std::vector<frame_ptr>& frames) {
  std::vector<std::string> out;
  for (auto& f : frames)
    out.push_back(f->rfind("event: gap", 0) == 0
                      ? "gap"
                      : f->substr(4, f->find('\n') - 4));
  return out;
}

using strings = std::vector<std::string>;

history reply(std::vector<uint64_t> ids, uint64_t end_id, bool gap = false,
              std::optional<uint64_t> oldest = std::nullopt) {
  history h;
  for (auto id : ids)
    h.frames.push_back(make(id).frame);
  h.end_id = end_id;
  h.gap = gap;
  h.oldest = oldest;
  return h;
}

} // namespace

TEST_CASE("a new seam holds live frames until the history arrives") {
  seam s{"3"};
  CHECK(s.holding());
  CHECK(s.held() == 0);
  CHECK(s.last_written() == 0);
  CHECK(s.on_live(make(6)) == std::nullopt);
  CHECK(s.on_live(make(7)) == std::nullopt);
  CHECK(s.held() == 2);
  CHECK(s.holding());
}

TEST_CASE("history is written, then the held frames after it") {
  seam s{"3"};
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(reply({4, 5}, 5));
  CHECK(names(out) == strings{"4", "5", "6", "7"});
  CHECK(!s.holding());
  CHECK(s.held() == 0);
  CHECK(s.last_written() == 7);
}

TEST_CASE("held frames the history already covers are dropped") {
  // The broadcaster forwarded 5 and 6 after the subscription but before its
  // ack, so the history reply carries them too.
  seam s{"3"};
  s.on_live(make(5));
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(reply({4, 5, 6}, 6));
  CHECK(names(out) == strings{"4", "5", "6", "7"});
  CHECK(s.last_written() == 7);
}

TEST_CASE("a held frame that arrived twice is written once") {
  seam s{"3"};
  s.on_live(make(6));
  s.on_live(make(6));
  s.on_live(make(7));
  s.on_live(make(7));
  CHECK(names(s.on_history(reply({}, 5))) == strings{"6", "7"});
}

TEST_CASE("after the history, live frames pass only when newer") {
  seam s{"3"};
  s.on_history(reply({4, 5}, 5));
  CHECK(s.last_written() == 5);
  CHECK(s.on_live(make(5)) == std::nullopt);
  CHECK(s.on_live(make(4)) == std::nullopt);
  auto six = make(6);
  auto out = s.on_live(six);
  REQUIRE(out);
  CHECK(out->get() == six.frame.get());
  CHECK(s.on_live(make(6)) == std::nullopt);
  CHECK(s.on_live(make(8)).has_value());
  CHECK(s.on_live(make(7)) == std::nullopt);
  CHECK(s.last_written() == 8);
  CHECK(s.held() == 0);
}

TEST_CASE("frames keep their identity through the seam") {
  seam s{""};
  auto held = make(6);
  s.on_live(held);
  auto h = reply({5}, 5);
  auto out = s.on_history(h);
  REQUIRE(out.size() == 2);
  CHECK(out[0].get() == h.frames[0].get());
  CHECK(out[1].get() == held.frame.get());
}

TEST_CASE("a gap event comes first, naming the request and the oldest id") {
  seam s{"1795718717123"};
  s.on_live(make(11));
  auto out = s.on_history(reply({9, 10}, 10, true, 9));
  CHECK(names(out) == strings{"gap", "9", "10", "11"});
  CHECK(*out[0]
        == "event: gap\n"
           "data: {\"requested\":\"1795718717123\",\"oldest\":9}\n\n");
}

TEST_CASE("a gap on an empty buffer has a null oldest") {
  seam s{"42"};
  auto out = s.on_history(reply({}, 0, true));
  REQUIRE(out.size() == 1);
  CHECK(*out[0]
        == "event: gap\ndata: {\"requested\":\"42\",\"oldest\":null}\n\n");
  CHECK(s.last_written() == 0);
  CHECK(s.on_live(make(1)).has_value());
}

TEST_CASE("a resume id newer than any known still releases live frames") {
  // The client asks after 99 but the server knows only up to 5: a gap, and
  // end_id stays at the seam so 6 and 7 are not swallowed.
  ring_buffer buf{10, 1h};
  for (uint64_t id = 1; id <= 5; ++id)
    REQUIRE(buf.push(make(id)));
  seam s{"99"};
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(
      buf.query(resume_point{resume_point::kind::after_id, 99, 0, "99"}, 5));
  CHECK(names(out) == strings{"gap", "6", "7"});
  CHECK(*out[0] == "event: gap\ndata: {\"requested\":\"99\",\"oldest\":1}\n\n");
  CHECK(s.last_written() == 7);
  CHECK(s.on_live(make(8)).has_value());
}

TEST_CASE("a resume id the client has beyond the ack drops those frames") {
  // The broadcaster's ack (3) is older than the client's id (5): held 4 and
  // 5 are already with the client.
  seam s{"5"};
  s.on_live(make(4));
  s.on_live(make(5));
  s.on_live(make(6));
  auto out = s.on_history(reply({}, 5));
  CHECK(names(out) == strings{"6"});
  CHECK(s.last_written() == 6);
}

TEST_CASE("last written is the end id when nothing newer was held") {
  seam s{""};
  s.on_live(make(3));
  CHECK(s.on_history(reply({}, 7)).empty());
  CHECK(s.last_written() == 7);
  CHECK(s.on_live(make(7)) == std::nullopt);
  CHECK(s.on_live(make(8)).has_value());
}

TEST_CASE("a history without frames or held frames writes nothing") {
  seam s{""};
  CHECK(s.on_history(reply({}, 0)).empty());
  CHECK(!s.holding());
  CHECK(s.last_written() == 0);
}

TEST_CASE("every interleaving of history and live writes each id once") {
  // The broadcaster forwarded 1..upto before acking; live frames upto+1..N
  // reach the connection in order, and the history reply lands before,
  // between or after any of them. The client resumes after id 2.
  constexpr uint64_t n = 8;
  for (uint64_t upto = 2; upto <= 6; ++upto) {
    for (uint64_t live_before = 0; live_before <= n - upto; ++live_before) {
      ring_buffer buf{16, 1h};
      for (uint64_t id = 1; id <= upto; ++id)
        REQUIRE(buf.push(make(id)));
      seam s{"2"};
      std::vector<frame_ptr> written;
      auto live = [&](uint64_t id) {
        // The buffer stores each update before the broadcaster forwards it.
        auto st = make(id);
        REQUIRE(buf.push(st));
        if (auto f = s.on_live(st))
          written.push_back(*f);
      };
      uint64_t next = upto + 1;
      for (uint64_t i = 0; i < live_before; ++i)
        live(next++);
      auto h = buf.query(resume_point{resume_point::kind::after_id, 2, 0, "2"},
                         upto);
      for (auto& f : s.on_history(h))
        written.push_back(f);
      while (next <= n)
        live(next++);
      strings expected;
      for (uint64_t id = 3; id <= n; ++id)
        expected.push_back(std::to_string(id));
      CHECK(!h.gap);
      CHECK_MESSAGE(names(written) == expected, "upto ", upto, " live_before ",
                    live_before);
      CHECK(s.last_written() == n);
    }
  }
}
