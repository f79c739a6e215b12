#pragma once
// The CA's durable state, in SQLite (WAL, synchronous=FULL; one host) or in PostgreSQL (several
// `evpn-ca serve` replicas on one database). store/ is the only code that sees either: the queries
// (here) are written once against database.hpp, which sqlite.hpp and postgres.hpp implement;
// schema.cpp holds the schema, batch.cpp the group commit.
// Thread-safe: one connection writes and another reads, each guarded by a mutex; enrollments and
// renewals that arrive together are committed together (one fsync). Several processes (serve, its
// replicas and the admin commands) may use the same store at once: their write transactions take
// turns, a writer waiting up to a few seconds for the others (then Errc::unavailable).

#include "ca-service/store/records.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evpn::ca::store {

class Connection;

// Where a store is: an SQLite file, or a PostgreSQL database named by a postgresql:// URL.
struct StoreLocation {
  std::string target;                      // a file path (":memory:" for tests) or a postgresql:// URL
  std::optional<std::string> password{};  // PostgreSQL's, when libpq's environment or ~/.pgpass do not give it
};

// Whether `target` names a PostgreSQL database rather than an SQLite file.
bool is_postgres_url(const std::string& target);
// Errc::invalid_request unless `url` is a postgresql:// (or postgres://) URL libpq accepts that
// does not carry a password (a password belongs in a file of its own, never in config.json).
Result<void> check_postgres_url(const std::string& url);

// What a CRL lists, and its number (take_crl_number).
struct CrlContent {
  long long number = 0;
  std::vector<RevocationRecord> revocations;
};

// Told of every group commit: how long its transaction took (BEGIN to COMMIT, the fsync included)
// and how many writes it held.
using CommitObserver = std::function<void(std::chrono::duration<double> took, std::size_t writes)>;

class Store {
 public:
  // Opens (creating if needed) the database and its schema (migrating an older one).
  static Result<Store> open(const StoreLocation& location);
  // An SQLite file; ":memory:" for tests.
  static Result<Store> open(const std::filesystem::path& file) { return open(StoreLocation{file.string()}); }

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Errc::conflict when a group of that name exists. Every change below that is not a lookup is
  // written to the audit log in the same transaction.
  Result<void> add_group(const GroupRecord& group);
  Result<std::optional<GroupRecord>> find_group(const std::string& name);

  // Errc::not_found when the token's group does not exist, Errc::conflict for a duplicate id.
  Result<void> add_token(const TokenRecord& token);
  Result<std::optional<TokenRecord>> find_token(const std::string& id);
  // Every token, oldest first.
  Result<std::vector<TokenRecord>> list_tokens();
  // Sets the token's uses to 0 and marks it revoked at `now`. Errc::not_found for an unknown id,
  // Errc::conflict when it is already revoked.
  Result<void> revoke_token(const std::string& id, TimePoint now);

  // Whether evpn-ca created (or an operator adopted) the XMPP account `username`.
  Result<bool> owns_account(const std::string& username);
  // Records that evpn-ca created the XMPP account `username`, with an audit entry; a no-op when it
  // is recorded already.
  Result<void> record_account(const std::string& username, TimePoint now);

  Result<std::optional<NodeRecord>> find_node(const std::string& username);
  // Every node, by username.
  Result<std::vector<NodeRecord>> list_nodes();

  // In one transaction: checks that the node's current certificate is still `how.expected_current`
  // (Errc::conflict otherwise) and is not revoked and unexpired at `now` (Errc::forbidden), spends
  // one use of the token (Errc::unauthorized when it has none left or has expired at `now`),
  // stores the certificate, marks the node's previous certificate "superseded" and makes this one
  // the node's current certificate (dropping a lockout still queued for the name). Nothing changes
  // on error.
  Result<void> record_enrollment(const std::string& token_id, const CertificateRecord& cert, TimePoint now,
                                 const EnrollmentCommit& how = {});

  // In one transaction: checks that `old_serial` is still the node's current, active, unexpired
  // certificate at `now` (Errc::unauthorized otherwise), supersedes it, stores `cert` as its
  // renewal and makes it current. Nothing changes on error.
  Result<void> record_renewal(const std::string& old_serial, const CertificateRecord& cert, TimePoint now);
  // The certificate that renewed `old_serial`, if any.
  Result<std::optional<CertificateRecord>> find_renewal(const std::string& old_serial);

  Result<std::optional<CertificateRecord>> find_certificate(const std::string& serial);
  // The active certificate that spending a use of `token_id` issued to `username`, if any.
  Result<std::optional<CertificateRecord>> find_enrollment(const std::string& token_id, const std::string& username);

  // In one transaction: marks the node's current certificate revoked at `now` for `reason` and
  // queues the node's directory lockout. Errc::not_found when no node has that name,
  // Errc::conflict when the certificate is already revoked.
  Result<RevocationRecord> revoke_node(const std::string& username, const std::string& reason, TimePoint now);
  // The same for the certificate `serial`; the lockout is queued only when it is its node's
  // current certificate (a node that renewed keeps its access). Errc::not_found for an unknown serial.
  Result<RevocationRecord> revoke_certificate(const std::string& serial, const std::string& reason, TimePoint now);
  // Every revoked certificate (for the CRL), by serial.
  Result<std::vector<RevocationRecord>> list_revocations();

  Result<std::vector<PendingLockout>> pending_lockouts();
  // The nodes whose current certificate is revoked and still valid at `now`: they must stay locked
  // out of the directory.
  Result<std::vector<std::string>> locked_out_usernames(TimePoint now);
  // The lockout queued for `username` by `serial` is done: removes it and writes the audit entry.
  Result<void> complete_lockout(const std::string& username, const std::string& serial, TimePoint now);
  // Counts a failed attempt of the lockout queued for `username` and keeps `error` for `nodes`.
  Result<void> record_lockout_failure(const std::string& username, const std::string& error);

  // The audit log, oldest first.
  Result<std::vector<AuditRecord>> list_audit();

  // Whether no CA has recorded anything here yet (every change writes the audit log).
  Result<bool> unused();

  // A cheap query that proves the database answers (for /healthz).
  Result<void> ping();

  // Changes when a change has been committed since the last call: SQLite's data_version of the
  // lookup connection (another connection or process committed), or on PostgreSQL the id of the
  // last audit entry (every change but a failed lockout attempt writes one). Tells the authority's
  // CRL cache, and tests, whether anything was written.
  Result<long long> data_version();

  // In one transaction: a CRL number greater than every one taken before, by any process or
  // replica, and at least `at_least`; and every revoked certificate at that moment. A CRL signed
  // with a higher number so lists every revocation a lower one listed.
  Result<CrlContent> take_crl_number(long long at_least);

  // The attempts of `kind` (a rate limit's name) counted for `subject` at or after `since`.
  Result<AttemptWindow> count_attempts(const std::string& kind, const std::string& subject, TimePoint since);
  // Counts one attempt of `kind` for `subject` at `at`, and forgets those of `kind` before
  // `forget_before` (out of every window).
  Result<void> record_attempt(const std::string& kind, const std::string& subject, TimePoint at,
                              TimePoint forget_before);

  // Runs `job` unless another Store on the same database (in this process or another replica) runs
  // it at this moment; true when `job` ran. Whoever dies mid-job leaves it to the others: on
  // PostgreSQL an advisory lock that the server drops with the holder's connection, on SQLite
  // flock(2) on FILE-job, which the kernel drops with the holder's process.
  Result<bool> run_exclusive(const std::function<void()>& job);
  // Calls `observer` after every group commit (batch.hpp); set it before the store is shared.
  void observe_commits(CommitObserver observer);

 private:
  struct State;
  explicit Store(std::unique_ptr<State> state);

  // Prepares `sql` with `args` on the reading connection and answers what `use` makes of the
  // statement, holding the connection's lock throughout.
  template <class Use, class... Args>
  auto read(Use use, const std::string& sql, const Args&... args);
  // Runs `change` on the writing connection in a transaction of its own, holding the connection's
  // lock; commits when it succeeds.
  template <class Change>
  auto write(Change change);
  // Runs `change` in a transaction shared with the writes that other threads submit meanwhile
  // (group commit, batch.hpp): enrollments and renewals.
  Result<void> write_batched(const std::function<Result<void>(Connection&)>& change);

  std::unique_ptr<State> state_;
};

}  // namespace evpn::ca::store
