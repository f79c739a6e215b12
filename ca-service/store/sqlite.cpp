#include "ca-service/store/sqlite.hpp"

namespace evpn::ca::store {
namespace {

struct ReleaseStmt {
  SqliteConnection* connection;
  void operator()(sqlite3_stmt* stmt) const noexcept { connection->release(stmt); }
};
using StmtHandle = std::unique_ptr<sqlite3_stmt, ReleaseStmt>;

// A prepared statement, stepped on demand: SQLite computes each row as it is read.
class SqliteRows final : public Rows {
 public:
  SqliteRows(sqlite3* db, StmtHandle stmt) : db_(db), stmt_(std::move(stmt)) {}

  Result<bool> step() override {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite_error(db_, rc, sqlite3_sql(stmt_.get()));
  }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::string text(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col))) : std::string();
  }
  long long integer(int col) const override { return sqlite3_column_int64(stmt_.get(), col); }

 private:
  sqlite3* db_;
  StmtHandle stmt_;
};

// Binding only fails for a wrong index or type, i.e. a bug here; step() would then report it.
void bind(sqlite3_stmt* stmt, int i, const Value& v) {
  if (const auto* text = std::get_if<std::string>(&v))
    sqlite3_bind_text(stmt, i, text->data(), static_cast<int>(text->size()), SQLITE_TRANSIENT);
  else if (const auto* number = std::get_if<long long>(&v))
    sqlite3_bind_int64(stmt, i, *number);
  else
    sqlite3_bind_null(stmt, i);
}

}  // namespace

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
  std::vector<const char*> pragmas{"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"};
  if (file != ":memory:") pragmas.insert(pragmas.begin(), "PRAGMA journal_mode = WAL");
  for (const char* pragma : pragmas)
    if (int prc = sqlite3_exec(db.get(), pragma, nullptr, nullptr, nullptr); prc != SQLITE_OK)
      return sqlite_error(db.get(), prc, pragma);
  return db;
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
}

Result<std::unique_ptr<Rows>> SqliteConnection::query(const std::string& sql, const std::vector<Value>& params) {
  auto stmt = acquire(sql);
  if (!stmt) return stmt.error();
  auto rows = std::make_unique<SqliteRows>(db_.get(), StmtHandle(*stmt, ReleaseStmt{this}));
  for (std::size_t i = 0; i < params.size(); ++i) bind(*stmt, static_cast<int>(i + 1), params[i]);
  return std::unique_ptr<Rows>(std::move(rows));
}

Result<void> SqliteConnection::exec(const std::string& sql) {
  const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, sql);
  return {};
}

Result<sqlite3_stmt*> SqliteConnection::acquire(const std::string& sql) {
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

void SqliteConnection::release(sqlite3_stmt* stmt) noexcept {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  idle_.emplace(sqlite3_sql(stmt), stmt);
}

}  // namespace evpn::ca::store
