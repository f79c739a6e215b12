#pragma once
// What the CA keeps: groups, tokens, certificates, nodes, revocations and the audit log, as plain
// values. The Store reads and writes them; code that only passes them around includes this alone.

#include "common/time.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace evpn::ca::store {

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

// Where a certificate stands in the store: the node's current one, replaced by a later one, or
// revoked by the operator. Stored as its to_string text.
enum class CertificateStatus { active, superseded, revoked };

constexpr std::string_view to_string(CertificateStatus status) {
  switch (status) {
    case CertificateStatus::active: return "active";
    case CertificateStatus::superseded: return "superseded";
    case CertificateStatus::revoked: return "revoked";
  }
  return "?";
}

constexpr std::optional<CertificateStatus> parse_certificate_status(std::string_view text) {
  for (auto status : {CertificateStatus::active, CertificateStatus::superseded, CertificateStatus::revoked})
    if (text == to_string(status)) return status;
  return std::nullopt;
}

struct CertificateRecord {
  std::string serial;  // hex, unique
  std::string username;
  std::string group;
  TimePoint not_before;
  TimePoint not_after;
  std::string pem;
  CertificateStatus status = CertificateStatus::active;
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
  CertificateStatus status = CertificateStatus::active;  // of the current certificate
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

// The attempts a rate limit counted for one subject (client address, token id, username) within
// its window (Store::count_attempts).
struct AttemptWindow {
  long long count = 0;
  std::optional<TimePoint> oldest{};
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

}  // namespace evpn::ca::store
