#include "ca-service/store/store.hpp"

#include <sqlite3.h>

#include <condition_variable>
#include <exception>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace evpn::ca::store {
namespace {

// The schema, in one place: each version's SQL brings a store from the version before it, so a
// new store runs them all and an older one the rest. Times are unix seconds.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE groups (
  name             TEXT PRIMARY KEY,
  overlay          TEXT NOT NULL,
  lifetime_seconds INTEGER NOT NULL,
  created_at       INTEGER NOT NULL
);
CREATE TABLE tokens (
  id          TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  group_name  TEXT NOT NULL REFERENCES groups(name),
  username    TEXT,
  expires_at  INTEGER NOT NULL,
  uses_left   INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE TABLE certificates (
  serial     TEXT PRIMARY KEY,
  username   TEXT NOT NULL,
  group_name TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after  INTEGER NOT NULL,
  pem        TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
  issued_at  INTEGER NOT NULL,
  token_id   TEXT,
  revoked_at        INTEGER,
  revocation_reason TEXT
);
CREATE INDEX certificates_by_username ON certificates(username);
CREATE TABLE nodes (
  username       TEXT PRIMARY KEY,
  group_name     TEXT NOT NULL,
  current_serial TEXT NOT NULL REFERENCES certificates(serial)
);
-- Directory lockouts that a revocation queued and that have not succeeded yet; `serve` retries them.
CREATE TABLE pending_lockouts (
  username   TEXT PRIMARY KEY,
  serial     TEXT NOT NULL REFERENCES certificates(serial),
  since      INTEGER NOT NULL,
  attempts   INTEGER NOT NULL,
  last_error TEXT
);
-- Append-only; never holds a secret.
CREATE TABLE audit (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  action   TEXT NOT NULL,
  username TEXT NOT NULL,
  serial   TEXT NOT NULL,
  token_id TEXT NOT NULL,
  detail   TEXT NOT NULL
);
)sql";

// Version 2: which XMPP accounts evpn-ca created (only those it ever issues for, unless an operator
// adopts one with a token made for it), and which certificate a renewal replaced (so that a
// renewal whose answer was lost is answered again). Every account a node holds a certificate for
// was created or taken by an earlier evpn-ca, so those are recorded as its own.
constexpr const char* kVersion2 = R"sql(
CREATE TABLE accounts (
  username TEXT PRIMARY KEY,
  origin   TEXT NOT NULL CHECK (origin IN ('created', 'adopted', 'migrated')),
  since    INTEGER NOT NULL
);
INSERT INTO accounts(username, origin, since)
  SELECT username, 'migrated', min(issued_at) FROM certificates GROUP BY username;
ALTER TABLE tokens ADD COLUMN adopt_existing INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN renewed_from TEXT;
CREATE INDEX certificates_by_renewed_from ON certificates(renewed_from);
)sql";

constexpr const char* kMigrations[] = {kVersion1, kVersion2};
constexpr long long kSchemaVersion = std::size(kMigrations);

constexpr const char* kSelectToken =
    "SELECT id, secret_hash, group_name, username, expires_at, uses_left, created_at, revoked_at, adopt_existing "
    "FROM tokens";

constexpr const char* kSelectNode =
    "SELECT n.username, n.group_name, n.current_serial, c.not_after, c.status, g.overlay, c.not_before, "
    "c.revoked_at, COALESCE(c.revocation_reason, ''), p.serial, p.since, p.attempts, COALESCE(p.last_error, '') "
    "FROM nodes n JOIN certificates c ON c.serial = n.current_serial "
    "LEFT JOIN groups g ON g.name = n.group_name LEFT JOIN pending_lockouts p ON p.username = n.username";

constexpr const char* kTokenRefused =
    "the enrollment token is unknown, expired or used up; ask the operator for a new one";

struct CloseDb {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;

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

// Runs fixed SQL without parameters (pragmas, schema, transaction control).
Result<void> exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return {};
}

}  // namespace

// One SQLite connection and the statements prepared on it. Preparing costs more than running most
// statements here (perf showed a third of the store's time in sqlite3_prepare_v2), so each
// statement is prepared once and reset after use. Not thread-safe: the Store guards each
// connection with a mutex.
class Connection {
 public:
  explicit Connection(DbHandle db) : db_(std::move(db)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
  }

  sqlite3* get() const noexcept { return db_.get(); }

  // An idle statement prepared from `sql`, or a newly prepared one.
  Result<sqlite3_stmt*> acquire(const std::string& sql) {
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

  // Takes back a statement from acquire(), reset for its next use.
  void release(sqlite3_stmt* stmt) noexcept {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    idle_.emplace(sqlite3_sql(stmt), stmt);
  }

 private:
  DbHandle db_;
  std::unordered_multimap<std::string, sqlite3_stmt*> idle_;
};

namespace {

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
  Result<bool> step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite_error(db_, rc, sqlite3_sql(stmt_.get()));
  }

  // Runs a statement that returns no rows.
  Result<void> run() {
    auto r = step();
    if (!r) return r.error();
    return {};
  }

  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col)))
             : std::string();
  }
  std::optional<std::string> optional_text(int col) const {
    if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
    return text(col);
  }
  long long integer(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  TimePoint time(int col) const { return from_unix(integer(col)); }
  std::optional<TimePoint> optional_time(int col) const {
    if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
    return time(col);
  }

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

// Runs SQL without parameters or rows (transaction control) through the statement cache.
Result<void> run(Connection& db, const char* sql) {
  auto s = Statement::prepare(db, sql);
  if (!s) return s.error();
  return s->run();
}

// BEGIN IMMEDIATE takes the write lock up front, so two processes never both read a token's
// uses and then both spend it; the busy timeout makes the second one wait instead of failing.
// Rolls back unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& db) {
    if (auto r = run(db, "BEGIN IMMEDIATE"); !r) return r.error();
    return Transaction(db);
  }
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (db_) (void)run(*db_, "ROLLBACK");
  }

  Result<void> commit() {
    if (auto r = run(*db_, "COMMIT"); !r) return r;
    db_ = nullptr;
    return {};
  }

 private:
  explicit Transaction(Connection& db) : db_(&db) {}
  Connection* db_;
};

Result<long long> schema_version(Connection& db) {
  auto s = Statement::prepare(db, "PRAGMA user_version");
  if (!s) return s.error();
  if (auto row = s->step(); !row) return row.error();
  return s->integer(0);
}

Result<void> create_schema(Connection& db) {
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto found = schema_version(db);
  if (!found) return found.error();
  if (*found > kSchemaVersion)
    return fail(Errc::internal, "the CA store has schema version " + std::to_string(*found) +
                                    " but this evpn-ca only knows version " + std::to_string(kSchemaVersion) +
                                    ": it was written by a newer evpn-ca; upgrade evpn-ca");
  for (long long version = *found + 1; version <= kSchemaVersion; ++version) {
    if (auto r = exec(db.get(), kMigrations[version - 1]); !r) return r;
    // PRAGMA takes no bound parameters.
    if (auto r = exec(db.get(), ("PRAGMA user_version = " + std::to_string(version)).c_str()); !r) return r;
  }
  return tx->commit();
}

// "30d", "12h", "5m" or "90s".
std::string duration_text(std::chrono::seconds d) {
  for (const auto& [unit, seconds] : {std::pair{"d", 86400}, std::pair{"h", 3600}, std::pair{"m", 60}})
    if (d.count() % seconds == 0) return std::to_string(d.count() / seconds) + unit;
  return std::to_string(d.count()) + "s";
}

// Inside an open transaction, so that the log and the change it records commit together.
Result<void> write_audit(Connection& db, const AuditRecord& entry) {
  auto s = Statement::prepare(db,
                              "INSERT INTO audit(at, action, username, serial, token_id, detail) "
                              "VALUES(?, ?, ?, ?, ?, ?)",
                              entry.at, entry.action, entry.username, entry.serial, entry.token_id, entry.detail);
  if (!s) return s.error();
  return s->run();
}

// Inside an open transaction: supersedes the node's current certificate, stores `cert` and makes
// it the node's current one. `token_id` is the token spent for it (none for a renewal);
// `renewed_from` the certificate a renewal replaces.
Result<void> install_current(Connection& db, const CertificateRecord& cert, const std::optional<std::string>& token_id,
                             const std::optional<std::string>& renewed_from = std::nullopt) {
  auto supersede =
      Statement::prepare(db,
                         "UPDATE certificates SET status = 'superseded' WHERE status = 'active' AND serial = "
                         "(SELECT current_serial FROM nodes WHERE username = ?)",
                         cert.username);
  if (!supersede) return supersede.error();
  if (auto r = supersede->run(); !r) return r;

  auto insert = Statement::prepare(
      db,
      "INSERT INTO certificates(serial, username, group_name, not_before, not_after, pem, status, "
      "issued_at, token_id, renewed_from) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      cert.serial, cert.username, cert.group, cert.not_before, cert.not_after, cert.pem, cert.status,
      cert.issued_at, token_id, renewed_from);
  if (!insert) return insert.error();
  if (auto r = insert->run(); !r) {
    if (r.error().code == Errc::conflict)
      return fail(Errc::conflict, "a certificate with serial " + cert.serial + " already exists");
    return r;
  }

  auto node = Statement::prepare(db,
                                 "INSERT INTO nodes(username, group_name, current_serial) VALUES(?, ?, ?) "
                                 "ON CONFLICT(username) DO UPDATE SET group_name = excluded.group_name, "
                                 "current_serial = excluded.current_serial",
                                 cert.username, cert.group, cert.serial);
  if (!node) return node.error();
  if (auto r = node->run(); !r) return r;

  // Enrollment refuses a name while its revoked certificate is valid, so a new certificate means
  // the name may log in again: a lockout still queued from before must not lock the new node out.
  auto unqueue = Statement::prepare(db, "DELETE FROM pending_lockouts WHERE username = ?", cert.username);
  if (!unqueue) return unqueue.error();
  return unqueue->run();
}

// Inside an open transaction: revokes `serial`, queues its node's lockout when it is the node's
// current certificate, and writes the audit entry.
Result<RevocationRecord> revoke_in(Connection& db, const std::string& serial, const std::string& reason, TimePoint now) {
  RevocationRecord revoked{serial, "", now, reason};
  {
    auto found = Statement::prepare(db,
                                    "SELECT c.username, c.status, c.not_after, c.revoked_at, "
                                    "COALESCE(c.revocation_reason, ''), n.username IS NOT NULL FROM certificates c "
                                    "LEFT JOIN nodes n ON n.current_serial = c.serial WHERE c.serial = ?",
                                    serial);
    if (!found) return found.error();
    auto row = found->step();
    if (!row) return row.error();
    if (!*row)
      return fail(Errc::not_found, "no certificate with serial " + serial +
                                       " was issued by this CA; `evpn-ca nodes` shows the current serials");
    revoked.username = found->text(0);
    revoked.not_after = found->time(2);
    revoked.lockout_queued = found->integer(5) != 0;
    if (found->text(1) == "revoked")
      return fail(Errc::conflict, "certificate " + serial + " of '" + revoked.username + "' was already revoked on " +
                                      to_rfc3339(found->time(3)) + " (" + found->text(4) + ")");
  }
  auto update = Statement::prepare(
      db, "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ?", now,
      reason, serial);
  if (!update) return update.error();
  if (auto r = update->run(); !r) return r.error();
  if (revoked.lockout_queued) {
    auto queue = Statement::prepare(db,
                                    "INSERT INTO pending_lockouts(username, serial, since, attempts) "
                                    "VALUES(?, ?, ?, 0) ON CONFLICT(username) DO UPDATE SET serial = excluded.serial, "
                                    "since = excluded.since, attempts = 0, last_error = NULL",
                                    revoked.username, serial, now);
    if (!queue) return queue.error();
    if (auto r = queue->run(); !r) return r.error();
  }
  const std::string detail = "reason " + reason + (revoked.lockout_queued
                                                       ? ", directory lockout queued"
                                                       : ", not the node's current certificate: no directory lockout");
  if (auto r = write_audit(db, {now, "revoke", revoked.username, serial, "", detail}); !r) return r.error();
  return revoked;
}

template <class T, class Read>
Result<std::optional<T>> find_one(Statement& s, Read read) {
  auto row = s.step();
  if (!row) return row.error();
  if (!*row) return std::optional<T>();
  return std::optional<T>(read(s));
}

template <class T, class Read>
Result<std::vector<T>> find_all(Statement& s, Read read) {
  std::vector<T> rows;
  for (;;) {
    auto row = s.step();
    if (!row) return row.error();
    if (!*row) return rows;
    rows.push_back(read(s));
  }
}

TokenRecord read_token(const Statement& row) {
  return TokenRecord{row.text(0), row.text(1),          row.text(2),
                     row.optional_text(3), row.time(4), static_cast<int>(row.integer(5)),
                     row.time(6),          row.optional_time(7), row.integer(8) != 0};
}

NodeRecord read_node(const Statement& row) {
  NodeRecord node{row.text(0), row.text(1), row.text(2), row.time(3), row.text(4)};
  node.overlay = row.text(5);
  node.not_before = row.time(6);
  node.revoked_at = row.optional_time(7);
  node.revocation_reason = row.text(8);
  if (auto serial = row.optional_text(9))
    node.pending_lockout = PendingLockout{node.username, *serial, row.time(10), static_cast<int>(row.integer(11)),
                                          row.text(12)};
  return node;
}

}  // namespace

namespace {

// A connection to the store's file with the settings every connection needs.
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

}  // namespace

// One write of a batch (see Store::write_batched).
struct PendingWrite {
  const std::function<Result<void>(Connection&)>& write;
  std::optional<Result<void>> result{};
};

// The connections and what guards them. Lookups have a connection of their own, so that they do
// not wait for a commit's fsync (WAL lets them read meanwhile); an in-memory database has one
// connection for both.
struct Store::State {
  explicit State(DbHandle db) : writer(std::move(db)) {}

  Connection writer;
  std::mutex write_mutex;
  std::unique_ptr<Connection> own_reader{};
  std::mutex own_read_mutex{};
  Connection* reader = &writer;
  std::mutex* read_mutex = &write_mutex;

  // Group commit: writes waiting for the next batch, and whether a thread is committing one.
  std::mutex batch_mutex{};
  std::condition_variable batch_done{};
  std::vector<PendingWrite*> queue{};
  bool committing = false;
};

Result<Store> Store::open(const std::filesystem::path& file) {
  auto db = open_connection(file);
  if (!db) return db.error();
  auto state = std::make_unique<State>(std::move(*db));
  if (auto r = create_schema(state->writer); !r) return with_context(r.error(), file.string());
  if (file != ":memory:") {
    auto reader = open_connection(file);
    if (!reader) return reader.error();
    if (auto r = exec(reader->get(), "PRAGMA query_only = ON"); !r) return r.error();
    state->own_reader = std::make_unique<Connection>(std::move(*reader));
    state->reader = state->own_reader.get();
    state->read_mutex = &state->own_read_mutex;
  }
  return Store(std::move(state));
}

Store::Store(std::unique_ptr<State> state) : state_(std::move(state)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<void> Store::write_batched(const std::function<Result<void>(Connection&)>& write) {
  State& st = *state_;
  PendingWrite mine{write};
  std::unique_lock lock(st.batch_mutex);
  st.queue.push_back(&mine);
  while (!mine.result) {
    if (st.committing) {
      st.batch_done.wait(lock);
      continue;
    }
    // No batch is being committed: this thread commits every write queued so far, its own included.
    st.committing = true;
    std::vector<PendingWrite*> batch;
    batch.swap(st.queue);
    lock.unlock();
    std::vector<Result<void>> results = commit_batch(batch);
    lock.lock();
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    st.committing = false;
    st.batch_done.notify_all();
  }
  return *mine.result;
}

std::vector<Result<void>> Store::commit_batch(const std::vector<PendingWrite*>& batch) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return std::vector<Result<void>>(batch.size(), tx.error());
  std::vector<Result<void>> results;
  for (PendingWrite* pending : batch) {
    // Each write in a savepoint of its own: one that fails is undone alone.
    Result<void> r = run(db, "SAVEPOINT batched_write");
    if (!r) return std::vector<Result<void>>(batch.size(), r.error());
    try {
      r = pending->write(db);
    } catch (const std::exception& e) {
      r = fail(Errc::internal, std::string("a write to the CA store threw: ") + e.what());
    }
    if (!r)
      if (auto undone = run(db, "ROLLBACK TO batched_write"); !undone)
        return std::vector<Result<void>>(batch.size(), undone.error());
    if (auto released = run(db, "RELEASE batched_write"); !released)
      return std::vector<Result<void>>(batch.size(), released.error());
    results.push_back(std::move(r));
  }
  // One COMMIT, one fsync, makes every write of the batch durable; until it succeeds none counts.
  if (auto committed = tx->commit(); !committed)
    for (auto& r : results)
      if (r) r = committed.error();
  return results;
}

Result<void> Store::add_group(const GroupRecord& group) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  const TimePoint now = now_seconds();
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto s = Statement::prepare(
      db, "INSERT INTO groups(name, overlay, lifetime_seconds, created_at) VALUES(?, ?, ?, ?)", group.name,
      group.overlay, group.lifetime, now);
  if (!s) return s.error();
  if (auto r = s->run(); !r) {
    if (r.error().code == Errc::conflict) return fail(Errc::conflict, "group '" + group.name + "' already exists");
    return r;
  }
  const std::string detail = "group " + group.name + " -> overlay " + group.overlay + ", certificates valid " +
                             duration_text(group.lifetime);
  if (auto r = write_audit(db, {now, "group-add", "", "", "", detail}); !r) return r;
  return tx->commit();
}

Result<std::optional<GroupRecord>> Store::find_group(const std::string& name) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "SELECT name, overlay, lifetime_seconds FROM groups WHERE name = ?", name);
  if (!s) return s.error();
  return find_one<GroupRecord>(*s, [](const Statement& row) {
    return GroupRecord{row.text(0), row.text(1), std::chrono::seconds(row.integer(2))};
  });
}

Result<void> Store::add_token(const TokenRecord& token) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto s = Statement::prepare(db,
                              "INSERT INTO tokens(id, secret_hash, group_name, username, expires_at, "
                              "uses_left, created_at, adopt_existing) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                              token.id, token.secret_hash, token.group, token.username, token.expires_at,
                              token.uses_left, token.created_at, token.adopt_existing ? 1 : 0);
  if (!s) return s.error();
  if (auto r = s->run(); !r) {
    if (r.error().code == Errc::not_found)
      return fail(Errc::not_found,
                  "group '" + token.group + "' does not exist: create it first with 'evpn-ca group add'");
    if (r.error().code == Errc::conflict)
      return fail(Errc::conflict, "a token with id '" + token.id + "' already exists");
    return r;
  }
  const std::string detail = "group " + token.group + ", " + std::to_string(token.uses_left) + " use(s), expires " +
                             to_rfc3339(token.expires_at) + (token.username ? "" : ", any username") +
                             (token.adopt_existing ? ", may adopt an existing XMPP account" : "");
  if (auto r = write_audit(db, {token.created_at, "token-create", token.username.value_or(""), "", token.id, detail});
      !r)
    return r;
  return tx->commit();
}

Result<std::optional<TokenRecord>> Store::find_token(const std::string& id) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, (std::string(kSelectToken) + " WHERE id = ?"), id);
  if (!s) return s.error();
  return find_one<TokenRecord>(*s, read_token);
}

Result<std::vector<TokenRecord>> Store::list_tokens() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, (std::string(kSelectToken) + " ORDER BY created_at, id"));
  if (!s) return s.error();
  return find_all<TokenRecord>(*s, read_token);
}

Result<void> Store::revoke_token(const std::string& id, TimePoint now) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  long long uses_left = 0;
  {
    auto found = Statement::prepare(db, "SELECT uses_left, revoked_at IS NOT NULL FROM tokens WHERE id = ?", id);
    if (!found) return found.error();
    auto row = found->step();
    if (!row) return row.error();
    if (!*row) return fail(Errc::not_found, "no token has the id '" + id + "'; `evpn-ca token list` shows the ids");
    if (found->integer(1) != 0) return fail(Errc::conflict, "token " + id + " is already revoked");
    uses_left = found->integer(0);
  }
  auto revoke = Statement::prepare(db, "UPDATE tokens SET uses_left = 0, revoked_at = ? WHERE id = ?", now, id);
  if (!revoke) return revoke.error();
  if (auto r = revoke->run(); !r) return r;
  if (auto r = write_audit(db, {now, "token-revoke", "", "", id, std::to_string(uses_left) + " use(s) were left"});
      !r)
    return r;
  return tx->commit();
}

Result<bool> Store::owns_account(const std::string& username) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "SELECT 1 FROM accounts WHERE username = ?", username);
  if (!s) return s.error();
  return s->step();
}

namespace {

// Inside an open transaction: `username` is evpn-ca's account from now on.
Result<void> insert_account(Connection& db, const std::string& username, const char* origin, TimePoint now) {
  auto s = Statement::prepare(db, "INSERT INTO accounts(username, origin, since) VALUES(?, ?, ?) "
                                  "ON CONFLICT(username) DO NOTHING", username, origin, now);
  if (!s) return s.error();
  if (auto r = s->run(); !r) return r;
  if (sqlite3_changes(db.get()) == 0) return {};
  const std::string detail = std::string(origin) == "adopted"
                                 ? "existing XMPP account adopted by a token made with --adopt-existing"
                                 : "XMPP account created";
  return write_audit(db, {now, std::string("account-") + (std::string(origin) == "adopted" ? "adopt" : "create"),
                          username, "", "", detail});
}

}  // namespace

Result<void> Store::record_account(const std::string& username, TimePoint now) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  if (auto r = insert_account(db, username, "created", now); !r) return r;
  return tx->commit();
}

Result<std::optional<NodeRecord>> Store::find_node(const std::string& username) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, (std::string(kSelectNode) + " WHERE n.username = ?"), username);
  if (!s) return s.error();
  return find_one<NodeRecord>(*s, read_node);
}

Result<std::vector<NodeRecord>> Store::list_nodes() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, (std::string(kSelectNode) + " ORDER BY n.username"));
  if (!s) return s.error();
  return find_all<NodeRecord>(*s, read_node);
}

Result<void> Store::record_enrollment(const std::string& token_id, const CertificateRecord& cert, TimePoint now,
                                      const EnrollmentCommit& how) {
  return write_batched([&](Connection& db) -> Result<void> {
    // The authority checked the node before it provisioned and signed; a revocation or another
    // enrollment of the name may have committed since.
    {
      auto node = Statement::prepare(db,
                                     "SELECT n.current_serial, c.status = 'revoked' AND c.not_after > ? FROM nodes n "
                                     "JOIN certificates c ON c.serial = n.current_serial WHERE n.username = ?",
                                     now, cert.username);
      if (!node) return node.error();
      auto row = node->step();
      if (!row) return row.error();
      const std::optional<std::string> current = *row ? std::optional(node->text(0)) : std::nullopt;
      if (*row && node->integer(1) != 0)
        return fail(Errc::forbidden, "username '" + cert.username + "' was revoked while this enrollment was handled");
      if (current != how.expected_current)
        return fail(Errc::conflict, "username '" + cert.username + "' was enrolled by another request meanwhile");
    }

    // The conditions live in the UPDATE itself, so checking and spending are one atomic step.
    auto spend = Statement::prepare(
        db, "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND expires_at > ?",
        token_id, now);
    if (!spend) return spend.error();
    if (auto r = spend->run(); !r) return r;
    if (sqlite3_changes(db.get()) == 0) return fail(Errc::unauthorized, kTokenRefused);

    if (auto r = install_current(db, cert, std::optional<std::string>(token_id)); !r) return r;
    if (how.adopts_account)
      if (auto r = insert_account(db, cert.username, "adopted", now); !r) return r;
    if (how.lifted_lockout)
      if (auto r = write_audit(db, {now, "lockout-lift", cert.username, cert.serial, token_id,
                                    "the revoked certificate had expired; a new enrollment lifted the lockout"});
          !r)
        return r;
    const std::string detail = "group " + cert.group + ", valid until " + to_rfc3339(cert.not_after);
    return write_audit(db, {now, "enroll", cert.username, cert.serial, token_id, detail});
  });
}

Result<void> Store::record_renewal(const std::string& old_serial, const CertificateRecord& cert, TimePoint now) {
  return write_batched([&](Connection& db) -> Result<void> {
    // Checked inside the transaction, so two renewals with the same certificate cannot both win.
    auto current = Statement::prepare(db,
                                      "SELECT 1 FROM nodes n JOIN certificates c ON c.serial = n.current_serial "
                                      "WHERE n.username = ? AND n.current_serial = ? AND c.status = 'active' "
                                      "AND c.not_after > ?",
                                      cert.username, old_serial, now);
    if (!current) return current.error();
    auto row = current->step();
    if (!row) return row.error();
    if (!*row)
      return fail(Errc::unauthorized, "certificate " + old_serial + " is not the current, active certificate of '" +
                                          cert.username + "'; enroll again with a token");
    if (auto r = install_current(db, cert, std::nullopt, old_serial); !r) return r;
    const std::string detail = "replaces " + old_serial + ", valid until " + to_rfc3339(cert.not_after);
    return write_audit(db, {now, "renew", cert.username, cert.serial, "", detail});
  });
}

namespace {

constexpr const char* kSelectCertificate =
    "SELECT serial, username, group_name, not_before, not_after, pem, status, issued_at FROM certificates";

CertificateRecord read_certificate(const Statement& row) {
  return CertificateRecord{row.text(0), row.text(1), row.text(2), row.time(3),
                           row.time(4), row.text(5), row.text(6), row.time(7)};
}

}  // namespace

Result<std::optional<CertificateRecord>> Store::find_certificate(const std::string& serial) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, (std::string(kSelectCertificate) + " WHERE serial = ?"), serial);
  if (!s) return s.error();
  return find_one<CertificateRecord>(*s, read_certificate);
}

Result<std::optional<CertificateRecord>> Store::find_enrollment(const std::string& token_id,
                                                                const std::string& username) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(
      db,
      (std::string(kSelectCertificate) +
       " WHERE token_id = ? AND username = ? AND status = 'active' ORDER BY issued_at DESC, serial LIMIT 1")
          ,
      token_id, username);
  if (!s) return s.error();
  return find_one<CertificateRecord>(*s, read_certificate);
}

Result<std::optional<CertificateRecord>> Store::find_renewal(const std::string& old_serial) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, std::string(kSelectCertificate) + " WHERE renewed_from = ?", old_serial);
  if (!s) return s.error();
  return find_one<CertificateRecord>(*s, read_certificate);
}

Result<RevocationRecord> Store::revoke_node(const std::string& username, const std::string& reason, TimePoint now) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  std::string serial;
  {
    auto current = Statement::prepare(db, "SELECT current_serial FROM nodes WHERE username = ?", username);
    if (!current) return current.error();
    auto row = current->step();
    if (!row) return row.error();
    if (!*row) return fail(Errc::not_found, "no node is named '" + username + "'; `evpn-ca nodes` lists them");
    serial = current->text(0);
  }
  auto revoked = revoke_in(db, serial, reason, now);
  if (!revoked) return revoked.error();
  if (auto r = tx->commit(); !r) return r.error();
  return revoked;
}

Result<RevocationRecord> Store::revoke_certificate(const std::string& serial, const std::string& reason,
                                                   TimePoint now) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto revoked = revoke_in(db, serial, reason, now);
  if (!revoked) return revoked.error();
  if (auto r = tx->commit(); !r) return r.error();
  return revoked;
}

Result<std::vector<RevocationRecord>> Store::list_revocations() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db,
                              "SELECT serial, username, revoked_at, revocation_reason, not_after FROM certificates "
                              "WHERE status = 'revoked' ORDER BY serial");
  if (!s) return s.error();
  return find_all<RevocationRecord>(*s, [](const Statement& row) {
    return RevocationRecord{row.text(0), row.text(1), row.time(2), row.text(3), row.time(4)};
  });
}

Result<std::vector<PendingLockout>> Store::pending_lockouts() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(
      db, "SELECT username, serial, since, attempts, COALESCE(last_error, '') FROM pending_lockouts ORDER BY since");
  if (!s) return s.error();
  return find_all<PendingLockout>(*s, [](const Statement& row) {
    return PendingLockout{row.text(0), row.text(1), row.time(2), static_cast<int>(row.integer(3)), row.text(4)};
  });
}

Result<std::vector<std::string>> Store::locked_out_usernames(TimePoint now) {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db,
                              "SELECT n.username FROM nodes n JOIN certificates c ON c.serial = n.current_serial "
                              "WHERE c.status = 'revoked' AND c.not_after > ? ORDER BY n.username",
                              now);
  if (!s) return s.error();
  return find_all<std::string>(*s, [](const Statement& row) { return row.text(0); });
}

Result<void> Store::complete_lockout(const std::string& username, const std::string& serial, TimePoint now) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto done = Statement::prepare(db, "DELETE FROM pending_lockouts WHERE username = ? AND serial = ?", username,
                                 serial);
  if (!done) return done.error();
  if (auto r = done->run(); !r) return r;
  // Another process got there first, or the name enrolled again since: nothing left to record.
  if (sqlite3_changes(db.get()) == 0) return {};
  if (auto r = write_audit(db, {now, "lockout", username, serial, "", "disabled in the XMPP directory"}); !r)
    return r;
  return tx->commit();
}

Result<void> Store::record_lockout_failure(const std::string& username, const std::string& error) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = state_->writer;
  auto s = Statement::prepare(
      db, "UPDATE pending_lockouts SET attempts = attempts + 1, last_error = ? WHERE username = ?", error, username);
  if (!s) return s.error();
  return s->run();
}

Result<std::vector<AuditRecord>> Store::list_audit() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "SELECT at, action, username, serial, token_id, detail FROM audit ORDER BY id");
  if (!s) return s.error();
  return find_all<AuditRecord>(*s, [](const Statement& row) {
    return AuditRecord{row.time(0), row.text(1), row.text(2), row.text(3), row.text(4), row.text(5)};
  });
}

Result<void> Store::ping() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "SELECT count(*) FROM groups");
  if (!s) return s.error();
  return s->run();
}

Result<long long> Store::data_version() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "PRAGMA data_version");
  if (!s) return s.error();
  if (auto row = s->step(); !row) return row.error();
  return s->integer(0);
}

Result<std::string> Store::integrity_check() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(db, "PRAGMA integrity_check");
  if (!s) return s.error();
  // A damaged file answers one row per problem found.
  std::string answer;
  for (;;) {
    auto row = s->step();
    if (!row) return row.error();
    if (!*row) return answer;
    if (!answer.empty()) answer += '\n';
    answer += s->text(0);
  }
}

Result<std::map<std::string, int>> Store::certificates_per_token() {
  std::lock_guard lock(*state_->read_mutex);
  Connection& db = *state_->reader;
  auto s = Statement::prepare(
      db, "SELECT token_id, count(*) FROM certificates WHERE token_id IS NOT NULL GROUP BY token_id");
  if (!s) return s.error();
  std::map<std::string, int> counts;
  for (;;) {
    auto row = s->step();
    if (!row) return row.error();
    if (!*row) return counts;
    counts[s->text(0)] = static_cast<int>(s->integer(1));
  }
}

}  // namespace evpn::ca::store
