#pragma once
// A thin C++ layer over SQLite for the store: connections with their statement cache, statements
// with bound parameters, transactions, and SQLite's result codes as Errors. Only store/ includes it.

#include "common/result.hpp"
#include "common/time.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace evpn::ca::store {

struct CloseDb {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;

// The Error for SQLite's result code `rc` from `what`: busy is unavailable, a duplicate a conflict,
// a missing reference not_found, anything else internal.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

// Runs fixed SQL without parameters (pragmas, schema, transaction control).
Result<void> exec(sqlite3* db, const char* sql);

// A connection to the store's file with the settings every connection needs (busy timeout, WAL
// unless in memory, synchronous=FULL, foreign keys).
Result<DbHandle> open_connection(const std::filesystem::path& file);

// One SQLite connection and the statements prepared on it. Preparing costs more than running most
// statements here (perf showed a third of the store's time in sqlite3_prepare_v2), so each
// statement is prepared once and reset after use. Not thread-safe: the Store guards each
// connection with a mutex.
class Connection {
 public:
  explicit Connection(DbHandle db) : db_(std::move(db)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  sqlite3* get() const noexcept { return db_.get(); }

  // An idle statement prepared from `sql`, or a newly prepared one.
  Result<sqlite3_stmt*> acquire(const std::string& sql);
  // Takes back a statement from acquire(), reset for its next use.
  void release(sqlite3_stmt* stmt) noexcept;

 private:
  DbHandle db_;
  std::unordered_multimap<std::string, sqlite3_stmt*> idle_;
};

struct ReleaseStmt {
  Connection* connection;
  void operator()(sqlite3_stmt* stmt) const noexcept { connection->release(stmt); }
};
using StmtHandle = std::unique_ptr<sqlite3_stmt, ReleaseStmt>;

// A prepared statement with its parameters bound; reads columns of the current row.
class Statement {
 public:
  template <class... Args>
  static Result<Statement> prepare(Connection& db, const std::string& sql, const Args&... args) {
    auto stmt = db.acquire(sql);
    if (!stmt) return stmt.error();
    Statement s(db.get(), StmtHandle(*stmt, ReleaseStmt{&db}));
    int index = 0;
    (s.bind(++index, args), ...);
    return s;
  }

  // True when a row is available, false when the statement is done.
  Result<bool> step();
  // Runs a statement that returns no rows.
  Result<void> run();

  std::string text(int col) const;
  std::optional<std::string> optional_text(int col) const;
  long long integer(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  TimePoint time(int col) const { return from_unix(integer(col)); }
  std::optional<TimePoint> optional_time(int col) const;

 private:
  Statement(sqlite3* db, StmtHandle stmt) : db_(db), stmt_(std::move(stmt)) {}

  // Binding only fails for a wrong index or type, i.e. a bug here; step() would then report it.
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, const std::string& v) { bind(i, std::string_view(v)); }
  void bind(int i, const char* v) { bind(i, std::string_view(v)); }
  void bind(int i, const std::optional<std::string>& v) {
    if (v)
      bind(i, *v);
    else
      sqlite3_bind_null(stmt_.get(), i);
  }
  void bind(int i, long long v) { sqlite3_bind_int64(stmt_.get(), i, v); }
  void bind(int i, int v) { sqlite3_bind_int64(stmt_.get(), i, v); }
  void bind(int i, TimePoint t) { bind(i, to_unix(t)); }
  void bind(int i, std::chrono::seconds s) { bind(i, static_cast<long long>(s.count())); }

  sqlite3* db_;
  StmtHandle stmt_;
};

// Prepares `sql` with `args` and runs it, for statements that return no rows.
template <class... Args>
Result<void> run(Connection& db, const std::string& sql, const Args&... args) {
  auto s = Statement::prepare(db, sql, args...);
  if (!s) return s.error();
  return s->run();
}

// BEGIN IMMEDIATE takes the write lock up front, so two processes never both read a token's
// uses and then both spend it; the busy timeout makes the second one wait instead of failing.
// Rolls back unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  explicit Transaction(Connection& db) : db_(&db) {}
  Connection* db_;
};

}  // namespace evpn::ca::store
