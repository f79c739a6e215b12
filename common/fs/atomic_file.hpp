#pragma once
// Crash-safe file writes: the one helper every key, certificate and config goes through.

#include "common/result.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace evpn::fs {

// Writes `data` to `path` atomically: a temporary file in the same directory created with
// `mode`, fsync, rename over `path`, fsync of the directory. After a crash `path` holds either
// the old or the new content, never a mix. The temporary file is removed on failure.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               std::filesystem::perms mode);

// Reads a whole file of at most `max_bytes`; Errc::not_found if it does not exist.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes = 1 << 20);

// fsyncs a directory so that renames and creations inside it are durable.
Result<void> sync_directory(const std::filesystem::path& dir);

}  // namespace evpn::fs
