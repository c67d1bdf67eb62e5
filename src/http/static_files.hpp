#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// Maps a decoded request path to a regular file inside `root` (canonical),
/// or nothing. `/` and paths ending in `/` mean `index.html`. A path with a
/// `..` segment, a backslash, or one that leaves the root through a symlink
/// resolves to nothing: no file outside the web root is ever served.
std::optional<std::filesystem::path>
resolve_static(const std::filesystem::path& root, std::string_view path);

/// The Content-Type for a file name (by extension).
std::string_view content_type_for(const std::filesystem::path& file);

/// Reads a whole file, or nothing on error.
std::optional<std::string> read_file(const std::filesystem::path& file);

} // namespace btcstream
