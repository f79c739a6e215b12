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

// Replaces the file `path` names with `data` as write_file_atomic does, keeping the replaced file's
// mode, owner and group; a file that does not exist yet is created with `new_file_mode`. A symlink
// is followed (through every link, relative ones from their own directory) and the file it names is
// replaced, so the link stays a link, as administrators expect of files under /etc. Errc::io when the
// owner cannot be kept (only root may give a file to another user).
Result<void> replace_file_atomic(const std::filesystem::path& path, std::string_view data,
                                 std::filesystem::perms new_file_mode);

// Reads a whole file of at most `max_bytes`; Errc::not_found if it does not exist.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes = 1 << 20);

// fsyncs a directory so that renames and creations inside it are durable.
Result<void> sync_directory(const std::filesystem::path& dir);

}  // namespace evpn::fs
