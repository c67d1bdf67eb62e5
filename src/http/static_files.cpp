#include "http/static_files.hpp"

#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace btcstream {

namespace fs = std::filesystem;

std::optional<fs::path> resolve_static(const fs::path& root,
                                       std::string_view path) {
  if (path.empty() || path.front() != '/')
    return std::nullopt;
  std::string rel{path.substr(1)};
  if (rel.empty() || rel.back() == '/')
    rel += "index.html";
  // Reject by segment before touching the file system; canonical() below
  // catches symlinks that lead out of the root.
  size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string::npos)
      end = rel.size();
    auto seg = std::string_view{rel}.substr(start, end - start);
    // A leading dot: `.` and `..`, and hidden files (`.git/`, `.env`), which
    // are not part of the page even if they land in the web root.
    if ((!seg.empty() && seg.front() == '.')
        || seg.find('\\') != std::string_view::npos)
      return std::nullopt;
    start = end + 1;
  }
  std::error_code ec;
  auto full = fs::canonical(root / rel, ec);
  if (ec)
    return std::nullopt;
  auto r = root.native();
  auto f = full.native();
  if (f.size() <= r.size() || f.compare(0, r.size(), r) != 0
      || f[r.size()] != '/')
    return std::nullopt;
  if (!fs::is_regular_file(full, ec))
    return std::nullopt;
  return full;
}

std::string_view content_type_for(const fs::path& file) {
  auto ext = file.extension().string();
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".html" || ext == ".htm")
    return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs")
    return "text/javascript; charset=utf-8";
  if (ext == ".css")
    return "text/css; charset=utf-8";
  if (ext == ".json")
    return "application/json";
  if (ext == ".svg")
    return "image/svg+xml";
  if (ext == ".png")
    return "image/png";
  if (ext == ".ico")
    return "image/x-icon";
  if (ext == ".txt")
    return "text/plain; charset=utf-8";
  if (ext == ".webmanifest")
    return "application/manifest+json";
  return "application/octet-stream";
}

std::string_view cache_control_for(const fs::path&) {
  return "no-cache";
}

std::string etag_for(const fs::path& file) {
  std::error_code size_ec, time_ec;
  auto size = fs::file_size(file, size_ec);
  auto mtime = fs::last_write_time(file, time_ec);
  if (size_ec || time_ec)
    return {};
  // libstdc++'s file clock has its epoch in 2174: times are negative.
  auto ns = static_cast<uint64_t>(mtime.time_since_epoch().count());
  std::ostringstream tag;
  tag << "W/\"" << std::hex << size << '-' << ns << '"';
  return tag.str();
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  if (etag.empty())
    return false;
  if (if_none_match == "*")
    return true;
  auto opaque = [](std::string_view t) {
    if (t.substr(0, 2) == "W/")
      t.remove_prefix(2);
    return t;
  };
  size_t start = 0;
  while (start < if_none_match.size()) {
    auto end = if_none_match.find(',', start);
    if (end == std::string_view::npos)
      end = if_none_match.size();
    auto tag = if_none_match.substr(start, end - start);
    // Optional whitespace: spaces and tabs (RFC 9110 5.6.3).
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t'))
      tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t'))
      tag.remove_suffix(1);
    if (opaque(tag) == opaque(etag))
      return true;
    start = end + 1;
  }
  return false;
}

std::optional<std::string> read_file(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::string body{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  if (in.bad())
    return std::nullopt;
  return body;
}

} // namespace btcstream
