#include "core/state_file.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

constexpr int64_t now = 1764182717000;

std::vector<update> three() {
  return {{uint64_t(now - 3000), now - 3000, 97000.5},
          {uint64_t(now - 2000), now - 2000, 97001.25},
          {uint64_t(now - 1000), now - 1000, 0.1}};
}

state_read read(const std::string& text, size_t max = 100,
                std::chrono::milliseconds ttl = 1h) {
  return decode_state(text, "BTC-USD", now, ttl, max);
}

} // namespace

TEST_CASE("a saved state reads back exactly") {
  auto r = read(encode_state("BTC-USD", three()));
  CHECK(r.error.empty());
  CHECK(r.updates == three());
  CHECK(r.expired == 0);
}

TEST_CASE("expired updates are dropped, the newest kept up to the capacity") {
  auto r = read(encode_state("BTC-USD", three()), 100, 2500ms);
  CHECK(r.error.empty());
  CHECK(r.expired == 1);
  REQUIRE(r.updates.size() == 2);
  CHECK(r.updates[0].id == uint64_t(now - 2000));
  auto capped = read(encode_state("BTC-USD", three()), 1);
  REQUIRE(capped.updates.size() == 1);
  CHECK(capped.updates[0].id == uint64_t(now - 1000));
}

TEST_CASE("an empty state is valid") {
  auto r = read(encode_state("BTC-USD", {}));
  CHECK(r.error.empty());
  CHECK(r.updates.empty());
}

TEST_CASE("a corrupt or foreign file is ignored whole, with a reason") {
  auto good = encode_state("BTC-USD", three());
  for (
      auto& bad : std::vector<std::string>{
          "",
          "not json",
          good.substr(0, good.size() / 2),
          "[]",
          R"({"format":"other","version":1,"instrument":"BTC-USD","updates":[]})",
          R"({"format":"btcstream-state","version":2,"instrument":"BTC-USD","updates":[]})",
          R"({"format":"btcstream-state","version":1,"instrument":"ETH-USD","updates":[]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD"})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":2,"ts":1,"price":1},{"id":2,"ts":1,"price":1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":3,"ts":5,"price":1},{"id":4,"ts":4,"price":1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":3,"ts":5,"price":-1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":0,"ts":5,"price":1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":-3,"ts":5,"price":1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":3,"ts":"5","price":1}]})",
          R"({"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[{"id":3,"ts":5}]})",
      }) {
    auto r = read(bad);
    CHECK_MESSAGE(!r.error.empty(), bad);
    CHECK_MESSAGE(r.updates.empty(), bad);
  }
}

TEST_CASE("files are written atomically and read back; a missing one says "
          "so") {
  auto dir = std::filesystem::temp_directory_path()
             / ("btcstream-state-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "state.json").string();
  std::string text;
  bool missing = false;
  CHECK(!read_file(path, text, missing).empty());
  CHECK(missing);
  CHECK(write_file_atomically(path, "one").empty());
  // A hard link keeps the first file: written in place, the second write
  // would show through it; replaced by a rename, the link keeps "one".
  auto old = (dir / "old.json").string();
  REQUIRE(::link(path.c_str(), old.c_str()) == 0);
  CHECK(write_file_atomically(path, "two").empty());
  CHECK(read_file(path, text, missing).empty());
  CHECK(!missing);
  CHECK(text == "two");
  CHECK(read_file(old, text, missing).empty());
  CHECK(text == "one");
  CHECK(std::filesystem::hard_link_count(old) == 1);
  CHECK(!std::filesystem::exists(path + ".tmp"));
  CHECK(!write_file_atomically((dir / "no" / "such").string(), "x").empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("a state file named without a directory is written in the "
          "current one") {
  auto dir = std::filesystem::temp_directory_path()
             / ("btcstream-state-cwd-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto before = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  CHECK(write_file_atomically("state.json", "three").empty());
  std::filesystem::current_path(before);
  std::string text;
  bool missing = false;
  CHECK(read_file((dir / "state.json").string(), text, missing).empty());
  CHECK(text == "three");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a directory where the state file should be is an error, not a "
          "crash") {
  // Reading a directory through a stream throws in libstdc++: the process
  // aborted at start.
  auto dir = std::filesystem::temp_directory_path()
             / ("btcstream-state-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string text;
  bool missing = true;
  std::string err;
  CHECK_NOTHROW(err = read_file(dir.string(), text, missing));
  CHECK(err.find("not a regular file") != std::string::npos);
  CHECK(!missing);
  std::filesystem::remove_all(dir);
}
