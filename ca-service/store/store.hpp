#pragma once
// The CA's durable state in SQLite (WAL, synchronous=FULL). The only code that sees sqlite3.h.
// Thread-safe: one connection writes and another reads, each guarded by a mutex; enrollments and
// renewals that arrive together are committed together (one fsync). Several processes (serve and
// the admin commands) may use the same file at once; writers wait up to a few seconds for each other.

#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace evpn::ca::store {

class Connection;
struct PendingWrite;

struct GroupRecord {
  std::string name;
  std::string overlay;
  std::chrono::seconds lifetime{30 * 86400};
};

struct TokenRecord {
  std::string id;           // public id, 16 hex chars
  std::string secret_hash;  // SHA-256 of the secret, 64 hex chars; the secret itself is never stored
  std::string group;
  std::optional<std::string> username;  // pinned username, if any
  TimePoint expires_at;
  int uses_left = 1;
  TimePoint created_at;
  std::optional<TimePoint> revoked_at{};  // set by revoke_token
  // Made with --adopt-existing: may take over an XMPP account of its pinned username that evpn-ca
  // did not create.
  bool adopt_existing = false;
};

struct CertificateRecord {
  std::string serial;  // hex, unique
  std::string username;
  std::string group;
  TimePoint not_before;
  TimePoint not_after;
  std::string pem;
  std::string status = "active";  // "active", "superseded", "revoked"
  TimePoint issued_at;
};

// How an enrollment that spends a token is committed (record_enrollment).
struct EnrollmentCommit {
  // The node's current certificate when the request was checked, if it had one: a request that
  // raced with another enrollment of the same name, or with its revocation, is refused.
  std::optional<std::string> expected_current{};
  // The token adopts an existing XMPP account: recorded as evpn-ca's, with an audit entry.
  bool adopts_account = false;
  // The request lifted the lockout of a name whose revoked certificate had expired (audit entry).
  bool lifted_lockout = false;
};

// A directory lockout that a revocation queued and that has not succeeded yet.
struct PendingLockout {
  std::string username;
  std::string serial;  // the revoked certificate that queued it
  TimePoint since;
  int attempts = 0;        // failed attempts so far
  std::string last_error;  // of the last failed attempt
};

struct NodeRecord {
  std::string username;
  std::string group;
  std::string current_serial;
  TimePoint not_after;  // of the current certificate
  std::string status;   // of the current certificate
  std::string overlay{};                            // of the group
  TimePoint not_before{};                           // of the current certificate
  std::optional<TimePoint> revoked_at{};            // of the current certificate
  std::string revocation_reason{};                  // of the current certificate
  std::optional<PendingLockout> pending_lockout{};  // while its directory lockout is owed
};

struct RevocationRecord {
  std::string serial;
  std::string username;
  TimePoint revoked_at;
  std::string reason;           // an RFC 5280 CRLReason name
  TimePoint not_after{};        // of the certificate
  bool lockout_queued = false;  // revoke_*: it was the node's current certificate, so its lockout was queued
};

// One line of the audit log. Fields that do not apply are "".
struct AuditRecord {
  TimePoint at;
  std::string action;  // enroll, renew, revoke, lockout, token-create, token-revoke, group-add
  std::string username;
  std::string serial;
  std::string token_id;
  std::string detail;
};

class Store {
 public:
  // Opens (creating if needed) the database file and its schema. ":memory:" for tests.
  static Result<Store> open(const std::filesystem::path& file);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Errc::conflict when a group of that name exists. Every change below that is not a lookup is
  // written to the audit log in the same transaction.
  Result<void> add_group(const GroupRecord& group);
  Result<std::optional<GroupRecord>> find_group(const std::string& name);

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

  // A cheap query that proves the database answers (for /healthz).
  Result<void> ping();

  // SQLite's data_version of this connection: it changes exactly when another connection (or
  // process) has committed a change since the last call. Lets a test prove nothing was written.
  Result<long long> data_version();

  // The answer of SQLite's `PRAGMA integrity_check`: "ok" for a sound database file.
  Result<std::string> integrity_check();

  // How many stored certificates each token was spent for, by token id (renewals spend none).
  Result<std::map<std::string, int>> certificates_per_token();

 private:
  struct State;
  explicit Store(std::unique_ptr<State> state);

  // Runs `write` inside a transaction shared with the writes other threads submit meanwhile (group
  // commit): each runs in its own savepoint, so one that fails is undone alone, and one COMMIT
  // makes the batch durable before any of its writers returns. The calling thread either commits
  // the batch itself or waits for the thread that does.
  Result<void> write_batched(const std::function<Result<void>(Connection&)>& write);
  std::vector<Result<void>> commit_batch(const std::vector<PendingWrite*>& batch);

  std::unique_ptr<State> state_;
};

}  // namespace evpn::ca::store
