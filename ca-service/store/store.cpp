#include "ca-service/store/store.hpp"

#include "ca-service/store/batch.hpp"
#include "ca-service/store/postgres.hpp"
#include "ca-service/store/schema.hpp"
#include "ca-service/store/sqlite.hpp"
#include "common/protocol/enrollment.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace evpn::ca::store {
namespace {

constexpr const char* kSelectToken =
    "SELECT id, secret_hash, group_name, username, expires_at, uses_left, created_at, revoked_at, adopt_existing "
    "FROM tokens";

constexpr const char* kSelectNode =
    "SELECT n.username, n.group_name, n.current_serial, c.not_after, c.status, g.overlay, c.not_before, "
    "c.revoked_at, COALESCE(c.revocation_reason, ''), p.serial, p.since, p.attempts, COALESCE(p.last_error, '') "
    "FROM nodes n JOIN certificates c ON c.serial = n.current_serial "
    "LEFT JOIN groups g ON g.name = n.group_name LEFT JOIN pending_lockouts p ON p.username = n.username";

constexpr const char* kSelectCertificate =
    "SELECT serial, username, group_name, not_before, not_after, pem, status, issued_at FROM certificates";

// The schema's CHECK constraint admits only the statuses there are.
CertificateStatus status_at(const Statement& row, int col) { return parse_certificate_status(row.text(col)).value(); }

// "30d", "12h", "5m" or "90s".
std::string duration_text(std::chrono::seconds d) {
  for (const auto& [unit, seconds] : {std::pair{"d", 86400}, std::pair{"h", 3600}, std::pair{"m", 60}})
    if (d.count() % seconds == 0) return std::to_string(d.count() / seconds) + unit;
  return std::to_string(d.count()) + "s";
}

// Inside an open transaction, so that the log and the change it records commit together.
Result<void> write_audit(Connection& db, const AuditRecord& entry) {
  return run(db, "INSERT INTO audit(at, action, username, serial, token_id, detail) VALUES(?, ?, ?, ?, ?, ?)",
             entry.at, entry.action, entry.username, entry.serial, entry.token_id, entry.detail);
}

// Inside an open transaction: supersedes the node's current certificate, stores `cert` and makes
// it the node's current one. `token_id` is the token spent for it (none for a renewal);
// `renewed_from` the certificate a renewal replaces.
Result<void> install_current(Connection& db, const CertificateRecord& cert, const std::optional<std::string>& token_id,
                             const std::optional<std::string>& renewed_from = std::nullopt) {
  if (auto r = run(db,
                   "UPDATE certificates SET status = 'superseded' WHERE status = 'active' AND serial = "
                   "(SELECT current_serial FROM nodes WHERE username = ?)",
                   cert.username);
      !r)
    return r;
  if (auto r = run(db,
                   "INSERT INTO certificates(serial, username, group_name, not_before, not_after, pem, status, "
                   "issued_at, token_id, renewed_from) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   cert.serial, cert.username, cert.group, cert.not_before, cert.not_after, cert.pem, to_string(cert.status),
                   cert.issued_at, token_id, renewed_from);
      !r) {
    if (r.error().code == Errc::conflict)
      return fail(Errc::conflict, "a certificate with serial " + cert.serial + " already exists");
    return r;
  }
  if (auto r = run(db,
                   "INSERT INTO nodes(username, group_name, current_serial) VALUES(?, ?, ?) "
                   "ON CONFLICT(username) DO UPDATE SET group_name = excluded.group_name, "
                   "current_serial = excluded.current_serial",
                   cert.username, cert.group, cert.serial);
      !r)
    return r;
  // Enrollment refuses a name while its revoked certificate is valid, so a new certificate means
  // the name may log in again: a lockout still queued from before must not lock the new node out.
  return run(db, "DELETE FROM pending_lockouts WHERE username = ?", cert.username);
}

// Inside an open transaction: revokes `serial`, queues its node's lockout when it is the node's
// current certificate, and writes the audit entry.
Result<RevocationRecord> revoke_in(Connection& db, const std::string& serial, const std::string& reason, TimePoint now) {
  RevocationRecord revoked{serial, "", now, reason};
  {
    auto found = Statement::prepare(db,
                                    "SELECT c.username, c.status, c.not_after, c.revoked_at, "
                                    "COALESCE(c.revocation_reason, ''), CASE WHEN n.username IS NULL THEN 0 ELSE 1 END "
                                    "FROM certificates c "
                                    "LEFT JOIN nodes n ON n.current_serial = c.serial WHERE c.serial = ?",
                                    serial);
    if (!found) return found.error();
    auto row = found->step();
    if (!row) return row.error();
    if (!*row)
      return fail(Errc::not_found, "no certificate with serial " + serial + " was issued by this CA");
    revoked.username = found->text(0);
    revoked.not_after = found->time(2);
    revoked.lockout_queued = found->integer(5) != 0;
    if (status_at(*found, 1) == CertificateStatus::revoked)
      return fail(Errc::conflict, "certificate " + serial + " of '" + revoked.username + "' was already revoked on " +
                                      to_rfc3339(found->time(3)) + " (" + found->text(4) + ")");
  }
  if (auto r = run(db, "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ?",
                   now, reason, serial);
      !r)
    return r.error();
  if (revoked.lockout_queued)
    if (auto r = run(db,
                     "INSERT INTO pending_lockouts(username, serial, since, attempts) "
                     "VALUES(?, ?, ?, 0) ON CONFLICT(username) DO UPDATE SET serial = excluded.serial, "
                     "since = excluded.since, attempts = 0, last_error = NULL",
                     revoked.username, serial, now);
        !r)
      return r.error();
  const std::string detail = "reason " + reason + (revoked.lockout_queued
                                                       ? ", directory lockout queued"
                                                       : ", not the node's current certificate: no directory lockout");
  if (auto r = write_audit(db, {now, "revoke", revoked.username, serial, "", detail}); !r) return r.error();
  return revoked;
}

// Inside an open transaction: `username` is evpn-ca's account from now on.
Result<void> insert_account(Connection& db, const std::string& username, const char* origin, TimePoint now) {
  if (auto r = run(db, "INSERT INTO accounts(username, origin, since) VALUES(?, ?, ?) ON CONFLICT(username) DO NOTHING",
                   username, origin, now);
      !r)
    return r;
  if (db.changes() == 0) return {};
  const std::string detail = std::string(origin) == "adopted"
                                 ? "existing XMPP account adopted by a token made with --adopt-existing"
                                 : "XMPP account created";
  return write_audit(db, {now, std::string("account-") + (std::string(origin) == "adopted" ? "adopt" : "create"),
                          username, "", "", detail});
}

// What a lookup makes of its statement: the first row read by `read`, if any (one), or every row (all).
template <class T, class Read>
auto one(Read read) {
  return [read](Statement& s) -> Result<std::optional<T>> {
    auto row = s.step();
    if (!row) return row.error();
    if (!*row) return std::optional<T>();
    return std::optional<T>(read(s));
  };
}

template <class T, class Read>
auto all(Read read) {
  return [read](Statement& s) -> Result<std::vector<T>> {
    std::vector<T> rows;
    for (;;) {
      auto row = s.step();
      if (!row) return row.error();
      if (!*row) return rows;
      rows.push_back(read(s));
    }
  };
}

TokenRecord read_token(const Statement& row) {
  return TokenRecord{row.text(0), row.text(1),          row.text(2),
                     row.optional_text(3), row.time(4), static_cast<int>(row.integer(5)),
                     row.time(6),          row.optional_time(7), row.integer(8) != 0};
}

NodeRecord read_node(const Statement& row) {
  NodeRecord node{row.text(0), row.text(1), row.text(2), row.time(3), status_at(row, 4)};
  node.overlay = row.text(5);
  node.not_before = row.time(6);
  node.revoked_at = row.optional_time(7);
  node.revocation_reason = row.text(8);
  if (auto serial = row.optional_text(9))
    node.pending_lockout = PendingLockout{node.username, *serial, row.time(10), static_cast<int>(row.integer(11)),
                                          row.text(12)};
  return node;
}

constexpr const char* kSelectRevocations =
    "SELECT serial, username, revoked_at, revocation_reason, not_after FROM certificates "
    "WHERE status = 'revoked' ORDER BY serial";

RevocationRecord read_revocation(const Statement& row) {
  return RevocationRecord{row.text(0), row.text(1), row.time(2), row.text(3), row.time(4)};
}

CertificateRecord read_certificate(const Statement& row) {
  return CertificateRecord{row.text(0), row.text(1), row.text(2), row.time(3),
                           row.time(4), row.text(5), status_at(row, 6), row.time(7)};
}

}  // namespace

bool is_postgres_url(const std::string& target) {
  return target.starts_with("postgresql://") || target.starts_with("postgres://");
}

// The connections and what guards them. Lookups have a connection of their own, so that they do
// not wait for a commit's fsync (WAL lets them read meanwhile); an in-memory database has one
// connection for both.
struct Store::State {
  explicit State(std::unique_ptr<Connection> db, std::optional<PostgresTarget> server = std::nullopt)
      : writer(std::move(db)), postgres(std::move(server)) {}

  std::unique_ptr<Connection> writer;
  std::mutex write_mutex;
  std::unique_ptr<Connection> own_reader{};
  std::mutex own_read_mutex{};
  Connection* reader = writer.get();
  std::mutex* read_mutex = &write_mutex;
  GroupCommit batch{*writer, write_mutex};
  // PostgreSQL: where it is, and the connection that holds run_exclusive's lock (opened on first use).
  std::optional<PostgresTarget> postgres;
  // SQLite: the file that run_exclusive locks ("" in memory).
  std::filesystem::path job_lock_file{};
  std::unique_ptr<PostgresConnection> lease{};
  std::mutex lease_mutex{};

  void use_reader(std::unique_ptr<Connection> connection) {
    own_reader = std::move(connection);
    reader = own_reader.get();
    read_mutex = &own_read_mutex;
  }
};

Result<Store> Store::open(const StoreLocation& location) {
  if (is_postgres_url(location.target)) {
    const PostgresTarget target{location.target, location.password};
    auto writer = PostgresConnection::open(target);
    if (!writer) return writer.error();
    auto state = std::make_unique<State>(std::move(*writer), target);
    if (auto r = create_schema(*state->writer); !r) return with_context(r.error(), location.target);
    auto reader = PostgresConnection::open(target, true);
    if (!reader) return reader.error();
    state->use_reader(std::move(*reader));
    return Store(std::move(state));
  }
  const std::filesystem::path file = location.target;
  auto db = open_connection(file);
  if (!db) return db.error();
  auto state = std::make_unique<State>(std::make_unique<SqliteConnection>(std::move(*db)));
  if (auto r = create_schema(*state->writer); !r) return with_context(r.error(), file.string());
  if (file != ":memory:") {
    auto reader = open_connection(file);
    if (!reader) return reader.error();
    auto connection = std::make_unique<SqliteConnection>(std::move(*reader));
    if (auto r = connection->exec("PRAGMA query_only = ON"); !r) return r.error();
    state->use_reader(std::move(connection));
    // Not the database file itself: closing any descriptor of it would drop SQLite's own locks.
    state->job_lock_file = file.string() + "-job";
  }
  return Store(std::move(state));
}

Store::Store(std::unique_ptr<State> state) : state_(std::move(state)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

void Store::observe_commits(CommitObserver observer) { state_->batch.observe(std::move(observer)); }

template <class Use, class... Args>
auto Store::read(Use use, const std::string& sql, const Args&... args) {
  std::lock_guard lock(*state_->read_mutex);
  auto s = Statement::prepare(*state_->reader, sql, args...);
  using Answer = decltype(use(*s));
  if (!s) return Answer(s.error());
  return use(*s);
}

template <class Change>
auto Store::write(Change change) {
  std::lock_guard lock(state_->write_mutex);
  Connection& db = *state_->writer;
  using Answer = decltype(change(db));
  auto tx = Transaction::begin(db);
  if (!tx) return Answer(tx.error());
  Answer answer = change(db);
  if (!answer) return answer;
  if (auto r = tx->commit(); !r) return Answer(r.error());
  return answer;
}

Result<void> Store::write_batched(const std::function<Result<void>(Connection&)>& change) {
  return state_->batch.run(change);
}

Result<void> Store::add_group(const GroupRecord& group) {
  return write([&](Connection& db) -> Result<void> {
    const TimePoint now = now_seconds();
    if (auto r = run(db, "INSERT INTO groups(name, overlay, lifetime_seconds, created_at) VALUES(?, ?, ?, ?)",
                     group.name, group.overlay, group.lifetime, now);
        !r) {
      if (r.error().code == Errc::conflict) return fail(Errc::conflict, "group '" + group.name + "' already exists");
      return r;
    }
    const std::string detail = "group " + group.name + " -> overlay " + group.overlay + ", certificates valid " +
                               duration_text(group.lifetime);
    return write_audit(db, {now, "group-add", "", "", "", detail});
  });
}

Result<std::optional<GroupRecord>> Store::find_group(const std::string& name) {
  return read(one<GroupRecord>([](const Statement& row) {
                return GroupRecord{row.text(0), row.text(1), std::chrono::seconds(row.integer(2))};
              }),
              "SELECT name, overlay, lifetime_seconds FROM groups WHERE name = ?", name);
}

Result<void> Store::add_token(const TokenRecord& token) {
  return write([&](Connection& db) -> Result<void> {
    if (auto r = run(db,
                     "INSERT INTO tokens(id, secret_hash, group_name, username, expires_at, "
                     "uses_left, created_at, adopt_existing) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                     token.id, token.secret_hash, token.group, token.username, token.expires_at, token.uses_left,
                     token.created_at, token.adopt_existing ? 1 : 0);
        !r) {
      if (r.error().code == Errc::not_found) return fail(Errc::not_found, "group '" + token.group + "' does not exist");
      if (r.error().code == Errc::conflict)
        return fail(Errc::conflict, "a token with id '" + token.id + "' already exists");
      return r;
    }
    const std::string detail = "group " + token.group + ", " + std::to_string(token.uses_left) + " use(s), expires " +
                               to_rfc3339(token.expires_at) + (token.username ? "" : ", any username") +
                               (token.adopt_existing ? ", may adopt an existing XMPP account" : "");
    return write_audit(db, {token.created_at, "token-create", token.username.value_or(""), "", token.id, detail});
  });
}

Result<std::optional<TokenRecord>> Store::find_token(const std::string& id) {
  return read(one<TokenRecord>(read_token), std::string(kSelectToken) + " WHERE id = ?", id);
}

Result<std::vector<TokenRecord>> Store::list_tokens() {
  return read(all<TokenRecord>(read_token), std::string(kSelectToken) + " ORDER BY created_at, id");
}

Result<void> Store::revoke_token(const std::string& id, TimePoint now) {
  return write([&](Connection& db) -> Result<void> {
    long long uses_left = 0;
    {
      auto found = Statement::prepare(db, "SELECT uses_left, CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END FROM tokens WHERE id = ?", id);
      if (!found) return found.error();
      auto row = found->step();
      if (!row) return row.error();
      if (!*row) return fail(Errc::not_found, "no token has the id '" + id + "'");
      if (found->integer(1) != 0) return fail(Errc::conflict, "token " + id + " is already revoked");
      uses_left = found->integer(0);
    }
    if (auto r = run(db, "UPDATE tokens SET uses_left = 0, revoked_at = ? WHERE id = ?", now, id); !r) return r;
    return write_audit(db, {now, "token-revoke", "", "", id, std::to_string(uses_left) + " use(s) were left"});
  });
}

Result<bool> Store::owns_account(const std::string& username) {
  return read([](Statement& s) { return s.step(); }, "SELECT 1 FROM accounts WHERE username = ?", username);
}

Result<void> Store::record_account(const std::string& username, TimePoint now) {
  // Batched: every enrollment of a new name records its account, and would otherwise pay an fsync
  // of its own before the one of its certificate.
  return write_batched([&](Connection& db) { return insert_account(db, username, "created", now); });
}

Result<std::optional<NodeRecord>> Store::find_node(const std::string& username) {
  return read(one<NodeRecord>(read_node), std::string(kSelectNode) + " WHERE n.username = ?", username);
}

Result<std::vector<NodeRecord>> Store::list_nodes() {
  return read(all<NodeRecord>(read_node), std::string(kSelectNode) + " ORDER BY n.username");
}

Result<void> Store::record_enrollment(const std::string& token_id, const CertificateRecord& cert, TimePoint now,
                                      const EnrollmentCommit& how) {
  return write_batched([&](Connection& db) -> Result<void> {
    // The authority checked the node before it provisioned and signed; a revocation or another
    // enrollment of the name may have committed since.
    {
      auto node = Statement::prepare(db,
                                     "SELECT n.current_serial, CASE WHEN c.status = 'revoked' AND c.not_after > ? THEN 1 "
                                     "ELSE 0 END FROM nodes n "
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
    if (auto r = run(db, "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND expires_at > ?",
                     token_id, now);
        !r)
      return r;
    if (db.changes() == 0) return fail(Errc::unauthorized, protocol::token_refused);

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

Result<std::optional<CertificateRecord>> Store::find_certificate(const std::string& serial) {
  return read(one<CertificateRecord>(read_certificate), std::string(kSelectCertificate) + " WHERE serial = ?", serial);
}

Result<std::optional<CertificateRecord>> Store::find_enrollment(const std::string& token_id,
                                                                const std::string& username) {
  return read(one<CertificateRecord>(read_certificate),
              std::string(kSelectCertificate) +
                  " WHERE token_id = ? AND username = ? AND status = 'active' ORDER BY issued_at DESC, serial LIMIT 1",
              token_id, username);
}

Result<std::optional<CertificateRecord>> Store::find_renewal(const std::string& old_serial) {
  return read(one<CertificateRecord>(read_certificate), std::string(kSelectCertificate) + " WHERE renewed_from = ?",
              old_serial);
}

Result<RevocationRecord> Store::revoke_node(const std::string& username, const std::string& reason, TimePoint now) {
  return write([&](Connection& db) -> Result<RevocationRecord> {
    std::string serial;
    {
      auto current = Statement::prepare(db, "SELECT current_serial FROM nodes WHERE username = ?", username);
      if (!current) return current.error();
      auto row = current->step();
      if (!row) return row.error();
      if (!*row) return fail(Errc::not_found, "no node is named '" + username + "'");
      serial = current->text(0);
    }
    return revoke_in(db, serial, reason, now);
  });
}

Result<RevocationRecord> Store::revoke_certificate(const std::string& serial, const std::string& reason,
                                                   TimePoint now) {
  return write([&](Connection& db) { return revoke_in(db, serial, reason, now); });
}

Result<std::vector<RevocationRecord>> Store::list_revocations() {
  return read(all<RevocationRecord>(read_revocation), kSelectRevocations);
}

Result<std::vector<PendingLockout>> Store::pending_lockouts() {
  return read(all<PendingLockout>([](const Statement& row) {
                return PendingLockout{row.text(0), row.text(1), row.time(2), static_cast<int>(row.integer(3)),
                                      row.text(4)};
              }),
              "SELECT username, serial, since, attempts, COALESCE(last_error, '') FROM pending_lockouts ORDER BY since");
}

Result<std::vector<std::string>> Store::locked_out_usernames(TimePoint now) {
  return read(all<std::string>([](const Statement& row) { return row.text(0); }),
              "SELECT n.username FROM nodes n JOIN certificates c ON c.serial = n.current_serial "
              "WHERE c.status = 'revoked' AND c.not_after > ? ORDER BY n.username",
              now);
}

Result<void> Store::complete_lockout(const std::string& username, const std::string& serial, TimePoint now) {
  return write([&](Connection& db) -> Result<void> {
    if (auto r = run(db, "DELETE FROM pending_lockouts WHERE username = ? AND serial = ?", username, serial); !r)
      return r;
    // Another process got there first, or the name enrolled again since: nothing left to record.
    if (db.changes() == 0) return {};
    return write_audit(db, {now, "lockout", username, serial, "", "disabled in the XMPP directory"});
  });
}

Result<void> Store::record_lockout_failure(const std::string& username, const std::string& error) {
  return write([&](Connection& db) {
    return run(db, "UPDATE pending_lockouts SET attempts = attempts + 1, last_error = ? WHERE username = ?", error,
               username);
  });
}

Result<std::vector<AuditRecord>> Store::list_audit() {
  return read(all<AuditRecord>([](const Statement& row) {
                return AuditRecord{row.time(0), row.text(1), row.text(2), row.text(3), row.text(4), row.text(5)};
              }),
              "SELECT at, action, username, serial, token_id, detail FROM audit ORDER BY id");
}

Result<bool> Store::unused() {
  return read(
      [](Statement& s) -> Result<bool> {
        auto row = s.step();
        if (!row) return row.error();
        return !*row;
      },
      "SELECT 1 FROM audit LIMIT 1");
}

Result<void> Store::ping() {
  return read([](Statement& s) { return s.run(); }, "SELECT count(*) FROM groups");
}

Result<long long> Store::data_version() {
  return read(
      [](Statement& s) -> Result<long long> {
        if (auto row = s.step(); !row) return row.error();
        return s.integer(0);
      },
      state_->postgres ? "SELECT COALESCE(max(id), 0) FROM audit" : "PRAGMA data_version");
}

Result<CrlContent> Store::take_crl_number(long long at_least) {
  return write([&](Connection& db) -> Result<CrlContent> {
    if (auto r = run(db,
                     "UPDATE counters SET value = CASE WHEN value + 1 > ? THEN value + 1 ELSE ? END "
                     "WHERE name = 'crl_number'",
                     at_least, at_least);
        !r)
      return r.error();
    CrlContent crl;
    {
      auto number = Statement::prepare(db, "SELECT value FROM counters WHERE name = 'crl_number'");
      if (!number) return number.error();
      if (auto row = number->step(); !row) return row.error();
      crl.number = number->integer(0);
    }
    auto revoked = Statement::prepare(db, kSelectRevocations);
    if (!revoked) return revoked.error();
    auto rows = all<RevocationRecord>(read_revocation)(*revoked);
    if (!rows) return rows.error();
    crl.revocations = std::move(*rows);
    return crl;
  });
}

namespace {

// flock(2) on a file next to the SQLite database: held by one open file at a time, in this process
// or another, and released by the kernel when the holder exits however it does.
Result<bool> run_with_file_lock(const std::filesystem::path& file, const std::function<void()>& job) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::io, "cannot open " + file.string() + ": " + std::strerror(errno));
  const bool mine = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  const int error = errno;
  if (mine) job();
  ::close(fd);
  if (!mine && error != EWOULDBLOCK)
    return fail(Errc::io, "cannot lock " + file.string() + ": " + std::strerror(error));
  return mine;
}

}  // namespace

Result<AttemptWindow> Store::count_attempts(const std::string& kind, const std::string& subject, TimePoint since) {
  return read(
      [](Statement& s) -> Result<AttemptWindow> {
        if (auto row = s.step(); !row) return row.error();
        return AttemptWindow{s.integer(0), s.optional_time(1)};
      },
      "SELECT count(*), min(at) FROM attempts WHERE kind = ? AND subject = ? AND at >= ?", kind, subject, since);
}

Result<void> Store::record_attempt(const std::string& kind, const std::string& subject, TimePoint at,
                                   TimePoint forget_before) {
  return write([&](Connection& db) -> Result<void> {
    if (auto r = run(db, "DELETE FROM attempts WHERE kind = ? AND at < ?", kind, forget_before); !r) return r;
    return run(db, "INSERT INTO attempts(kind, subject, at) VALUES(?, ?, ?)", kind, subject, at);
  });
}

Result<bool> Store::run_exclusive(const std::function<void()>& job) {
  if (!state_->postgres) {
    if (!state_->job_lock_file.empty()) return run_with_file_lock(state_->job_lock_file, job);
    job();
    return true;
  }
  // Any number no other user of the database takes as an advisory lock: "evpn-lo" in ASCII.
  constexpr long long kLockoutJob = 28559197904661615;
  std::lock_guard lock(state_->lease_mutex);
  if (!state_->lease) {
    auto connection = PostgresConnection::open(*state_->postgres);
    if (!connection) return connection.error();
    state_->lease = std::move(*connection);
  }
  auto mine = state_->lease->try_lock(kLockoutJob);
  if (!mine) return mine.error();
  if (!*mine) return false;
  job();
  if (auto r = state_->lease->unlock(kLockoutJob); !r) return r.error();
  return true;
}

}  // namespace evpn::ca::store
