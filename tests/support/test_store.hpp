#pragma once
// Which database the unit tests' stores live in: SQLite by default, PostgreSQL when the environment
// says EVPN_TEST_STORE=postgresql (ctest's *_postgresql runs). Then the tests run on a PostgreSQL
// server of their own, each store file standing for a database of its own and each in-memory
// store for a fresh one. A test binary run for PostgreSQL where it is not installed exits 77 at
// start-up, which ctest reports as skipped, never as passed.

#include "ca-service/store/store.hpp"

#include <filesystem>
#include <string>

namespace evpn::test {

class PostgresServer;

bool on_postgres();

// The server of the PostgreSQL run, started on first use and stopped at exit.
PostgresServer& test_postgres();

// Where the store that the SQLite run keeps in `file` (":memory:" included) is kept in this run.
ca::store::StoreLocation store_location(const std::filesystem::path& file);

// Runs fixed SQL on the database behind the store file `file` (to leave it as an older or a newer
// evpn-ca would have).
void execute_sql(const std::filesystem::path& file, const std::string& sql);
void set_schema_version(const std::filesystem::path& file, int version);

}  // namespace evpn::test
