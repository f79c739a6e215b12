#include "ca-service/store/sqlite.hpp"

namespace evpn::ca::store {

// Extended result codes are on, so `rc` tells a unique violation from other constraint failures.
Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string detail = std::string(what) + ": " + sqlite3_errmsg(db);
  // A 503 reaches the client as it is: it says what happened, not which statement waited.
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    return fail(Errc::unavailable, "the CA store is busy with another writer; retry in a moment");
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
    return fail(Errc::conflict, "the CA store refused a duplicate: " + detail);
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
    return fail(Errc::not_found, "the CA store refused a reference to a missing row: " + detail);
  return fail(Errc::internal, "the CA store failed: " + detail);
}

Result<void> exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return {};
}

Result<DbHandle> open_connection(const std::filesystem::path& file) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  DbHandle db(raw);
  if (rc != SQLITE_OK)
    return fail(Errc::io, "cannot open the CA store '" + file.string() +
                              "': " + (db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc)));
  sqlite3_extended_result_codes(db.get(), 1);
  // The busy timeout comes first so that even switching to WAL waits for another process.
  sqlite3_busy_timeout(db.get(), 5000);
  if (file != ":memory:") {
    if (auto r = exec(db.get(), "PRAGMA journal_mode = WAL"); !r) return r.error();
  }
  for (const char* pragma : {"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
    if (auto r = exec(db.get(), pragma); !r) return r.error();
  }
  return db;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
}

Result<sqlite3_stmt*> Connection::acquire(const std::string& sql) {
  if (auto found = idle_.find(sql); found != idle_.end()) {
    sqlite3_stmt* stmt = found->second;
    idle_.erase(found);
    return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size() + 1),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return sqlite_error(db_.get(), rc, "preparing a query");
  }
  return stmt;
}

void Connection::release(sqlite3_stmt* stmt) noexcept {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  idle_.emplace(sqlite3_sql(stmt), stmt);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(db_, rc, sqlite3_sql(stmt_.get()));
}

Result<void> Statement::run() {
  auto r = step();
  if (!r) return r.error();
  return {};
}

std::string Statement::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col))) : std::string();
}

std::optional<std::string> Statement::optional_text(int col) const {
  if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
  return text(col);
}

std::optional<TimePoint> Statement::optional_time(int col) const {
  if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
  return time(col);
}

Result<Transaction> Transaction::begin(Connection& db) {
  if (auto r = run(db, "BEGIN IMMEDIATE"); !r) return r.error();
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_) (void)run(*db_, "ROLLBACK");
}

Result<void> Transaction::commit() {
  if (auto r = run(*db_, "COMMIT"); !r) return r;
  db_ = nullptr;
  return {};
}

}  // namespace evpn::ca::store
