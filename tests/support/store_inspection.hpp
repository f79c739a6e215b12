#pragma once
// Questions that only tests ask of a CA store, answered from the database itself.

#include "ca-service/store/store.hpp"
#include "common/result.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace evpn::test {

// The answer of SQLite's `PRAGMA integrity_check` on the store `db`: "ok" for a sound file.
Result<std::string> integrity_check(const std::filesystem::path& db);

// How many stored certificates each token was spent for, by token id (renewals spend none).
Result<std::map<std::string, int>> certificates_per_token(const std::filesystem::path& db);
Result<std::map<std::string, int>> certificates_per_token(const ca::store::StoreLocation& store);

}  // namespace evpn::test
