#pragma once
// The store's database in SQLite: connections with their statement cache, and SQLite's result
// codes as Errors. Only store/ includes it.

#include "ca-service/store/database.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace evpn::ca::store {

struct CloseDb {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;

// The Error for SQLite's result code `rc` from `what`: busy is unavailable, a duplicate a conflict,
// a missing reference not_found, anything else internal.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

// A connection to the store's file with the settings every connection needs (busy timeout, WAL
// unless in memory, synchronous=FULL, foreign keys).
Result<DbHandle> open_connection(const std::filesystem::path& file);

// One SQLite connection and the statements prepared on it. Preparing costs more than running most
// statements here (perf showed a third of the store's time in sqlite3_prepare_v2), so each
// statement is prepared once and reset after use.
class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(DbHandle db) : db_(std::move(db)) {}
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  ~SqliteConnection() override;

  sqlite3* get() const noexcept { return db_.get(); }

  Dialect dialect() const override { return Dialect::sqlite; }
  Result<std::unique_ptr<Rows>> query(const std::string& sql, const std::vector<Value>& params) override;
  Result<void> exec(const std::string& sql) override;
  long long changes() override { return sqlite3_changes(db_.get()); }
  // BEGIN IMMEDIATE takes the write lock up front, so two processes never both read a token's
  // uses and then both spend it; the busy timeout makes the second one wait instead of failing.
  Result<void> begin() override { return exec("BEGIN IMMEDIATE"); }
  Result<void> commit() override { return exec("COMMIT"); }
  void rollback() noexcept override { (void)exec("ROLLBACK"); }

  // Takes back a statement from query(), reset for its next use.
  void release(sqlite3_stmt* stmt) noexcept;

 private:
  // An idle statement prepared from `sql`, or a newly prepared one.
  Result<sqlite3_stmt*> acquire(const std::string& sql);

  DbHandle db_;
  std::unordered_multimap<std::string, sqlite3_stmt*> idle_;
};

}  // namespace evpn::ca::store
