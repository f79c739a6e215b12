#pragma once
// Moving a CA's state from its SQLite file into a PostgreSQL database, for a CA that grows into
// several replicas (`evpn-ca store migrate`).

#include "ca-service/store/store.hpp"
#include "common/result.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace evpn::ca::store {

// What a copy holds, read back from each side.
struct StoreSummary {
  std::map<std::string, long long> rows;  // per table
  std::string certificates_sha256;        // over every certificate's serial, status and PEM, by serial
};

// Copies every row of the SQLite store `file` (brought to the current schema first) into the empty
// PostgreSQL store `to` (its schema created), in one transaction, then reads both back and
// compares them: Errc::conflict when `to` already holds a CA's state, Errc::internal when the
// copy differs. The CA must be stopped meanwhile: a change made during the copy is lost.
Result<StoreSummary> copy_to_postgres(const std::filesystem::path& file, const StoreLocation& to);

}  // namespace evpn::ca::store
