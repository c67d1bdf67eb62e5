#include "core/frame_sink.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace btcstream;

TEST_CASE("session states have stable names for logs and metrics") {
  CHECK(std::string{to_string(session_state::closed)} == "closed");
  CHECK(std::string{to_string(session_state::slow)} == "slow");
  CHECK(std::string{to_string(session_state::stalled)} == "stalled");
}

namespace {

/// Counts how a job ended.
struct counting_job final : sink_job {
  int runs = 0;
  int drops = 0;
  void run() override { ++runs; }
  void drop() override { ++drops; }
};

} // namespace

TEST_CASE("a posted job runs once when invoked, and is not dropped after") {
  counting_job j;
  {
    posted_job p{j};
    p();
    p();
  }
  CHECK(j.runs == 1);
  CHECK(j.drops == 0);
}

TEST_CASE("a posted job destroyed unrun is dropped, once") {
  counting_job j;
  { posted_job p{j}; }
  CHECK(j.runs == 0);
  CHECK(j.drops == 1);
}

TEST_CASE("a posted job moves as the executor moves its handlers: only the "
          "last holder runs or drops it") {
  counting_job ran;
  {
    posted_job a{ran};
    posted_job b{std::move(a)};
    b();
  }
  CHECK(ran.runs == 1);
  CHECK(ran.drops == 0);
  counting_job dropped;
  {
    posted_job a{dropped};
    posted_job b{std::move(a)};
  }
  CHECK(dropped.runs == 0);
  CHECK(dropped.drops == 1);
}

TEST_CASE("a sink that cannot run jobs drops each job it is given") {
  struct plain_sink final : frame_sink {
    void deliver(frame_ptr, int64_t) override {}
    void replay(std::vector<frame_ptr>) override {}
    void close(end_cause) override {}
  } sink;
  counting_job j;
  CHECK_FALSE(sink.runs_jobs());
  sink.schedule(j);
  CHECK(j.drops == 1);
  CHECK(j.runs == 0);
}
