#include "core/state_file.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

namespace btcstream {

namespace {

constexpr const char* format_name = "btcstream-state";
constexpr int format_version = 1;

std::string errno_text() {
  return std::strerror(errno);
}

} // namespace

std::string encode_state(const std::string& instrument,
                         const std::vector<update>& updates) {
  nlohmann::json list = nlohmann::json::array();
  for (auto& u : updates)
    list.push_back({{"id", u.id}, {"ts", u.ts_ms}, {"price", u.price}});
  nlohmann::json j{{"format", format_name},
                   {"version", format_version},
                   {"instrument", instrument},
                   {"updates", std::move(list)}};
  return j.dump() + "\n";
}

state_read decode_state(const std::string& text, const std::string& instrument,
                        int64_t now_ms, std::chrono::milliseconds ttl,
                        size_t max_entries) {
  state_read out;
  auto fail = [&out](std::string why) {
    out.updates.clear();
    out.error = std::move(why);
    return out;
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("not a JSON object");
  auto field = [&j](const char* k) {
    auto i = j.find(k);
    return i == j.end() ? nlohmann::json{} : *i;
  };
  if (field("format") != format_name)
    return fail("not a btcstream state file");
  if (field("version") != format_version)
    return fail("unknown version " + field("version").dump());
  if (field("instrument") != instrument)
    return fail("for instrument " + field("instrument").dump() + ", not "
                + instrument);
  auto list = field("updates");
  if (!list.is_array())
    return fail("no list of updates");
  uint64_t last_id = 0;
  int64_t last_ts = 0;
  auto cutoff = now_ms - ttl.count();
  for (auto& e : list) {
    if (!e.is_object() || !e.contains("id") || !e.contains("ts")
        || !e.contains("price") || !e["id"].is_number_unsigned()
        || !e["ts"].is_number_integer() || !e["price"].is_number())
      return fail("an entry is not {id, ts, price}");
    update u{e["id"].get<uint64_t>(), e["ts"].get<int64_t>(),
             e["price"].get<double>()};
    if (u.id == 0 || u.id <= last_id || u.ts_ms < last_ts
        || !std::isfinite(u.price) || !(u.price > 0))
      return fail("entry " + std::to_string(u.id)
                  + " is out of order or invalid");
    last_id = u.id;
    last_ts = u.ts_ms;
    if (u.ts_ms < cutoff) {
      ++out.expired;
      continue;
    }
    out.updates.push_back(u);
  }
  if (out.updates.size() > max_entries)
    out.updates.erase(out.updates.begin(),
                      out.updates.end() - static_cast<ptrdiff_t>(max_entries));
  return out;
}

std::string write_file_atomically(const std::string& path,
                                  const std::string& text) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return "cannot create '" + tmp + "': " + errno_text();
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write '" + tmp + "': " + why;
    }
    done += static_cast<size_t>(n);
  }
  // Closed whatever the sync says: no descriptor left behind.
  std::string why;
  if (::fsync(fd) != 0)
    why = errno_text();
  if (::close(fd) != 0 && why.empty())
    why = errno_text();
  if (!why.empty()) {
    ::unlink(tmp.c_str());
    return "cannot sync '" + tmp + "': " + why;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    why = errno_text();
    ::unlink(tmp.c_str());
    return "cannot rename '" + tmp + "' to '" + path + "': " + why;
  }
  // The rename is an entry of the directory: synced too, or a power loss
  // right after a clean stop could leave the old file (or none).
  auto dir = std::filesystem::path{path}.parent_path();
  if (dir.empty())
    dir = ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || ::fsync(dir_fd) != 0)
    why = errno_text();
  if (dir_fd >= 0)
    ::close(dir_fd);
  if (!why.empty())
    return "'" + path + "' written, but cannot sync its directory '"
           + dir.string() + "': " + why;
  return {};
}

std::string read_file(const std::string& path, std::string& text,
                      bool& missing) {
  missing = false;
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    missing = errno == ENOENT;
    return "cannot read '" + path + "': " + errno_text();
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return "'" + path + "' is not a regular file";
  try {
    text.assign(std::istreambuf_iterator<char>{in},
                std::istreambuf_iterator<char>{});
  } catch (const std::exception& e) {
    return "cannot read '" + path + "': " + e.what();
  }
  if (in.bad())
    return "cannot read '" + path + "'";
  return {};
}

} // namespace btcstream
