#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// Maps a decoded request path to a regular file inside `root` (canonical),
/// or nothing. `/` and paths ending in `/` mean `index.html`. A path with a
/// segment that starts with a dot (`..`, hidden files), a backslash, or one
/// that leaves the root through a symlink resolves to nothing: no file
/// outside the web root, nor a hidden one in it, is ever served.
std::optional<std::filesystem::path>
resolve_static(const std::filesystem::path& root, std::string_view path);

/// The Content-Type for a file name (by extension, in any case).
std::string_view content_type_for(const std::filesystem::path& file);

/// The Cache-Control for a file: every file is revalidated on every use (a
/// 304 for its ETag), so a new release shows at once and never as new HTML
/// with an hour-old script.
std::string_view cache_control_for(const std::filesystem::path& file);

/// A validator for conditional requests: size and modification time.
std::string etag_for(const std::filesystem::path& file);

/// Whether an If-None-Match header value matches `etag` (weak comparison).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

/// Reads a whole file, or nothing on error.
std::optional<std::string> read_file(const std::filesystem::path& file);

} // namespace btcstream
