#pragma once
// Questions that only tests ask of a CA store file, answered from the file itself.

#include "common/result.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace evpn::test {

// The answer of SQLite's `PRAGMA integrity_check` on the store `db`: "ok" for a sound file.
Result<std::string> integrity_check(const std::filesystem::path& db);

// How many stored certificates each token was spent for, by token id (renewals spend none).
Result<std::map<std::string, int>> certificates_per_token(const std::filesystem::path& db);

}  // namespace evpn::test
