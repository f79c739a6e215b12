#pragma once
// The CA's durable state in SQLite (WAL, synchronous=FULL). The only code that sees sqlite3.h.
// Thread-safe: one connection guarded by a mutex. Several processes (serve and the admin
// commands) may use the same file at once; writers wait up to a few seconds for each other.

#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

struct sqlite3;

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

struct NodeRecord {
  std::string username;
  std::string group;
  std::string current_serial;
  TimePoint not_after;  // of the current certificate
  std::string status;   // of the current certificate
};

class Store {
 public:
  // Opens (creating if needed) the database file and its schema. ":memory:" for tests.
  static Result<Store> open(const std::filesystem::path& file);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Errc::conflict when a group of that name exists.
  Result<void> add_group(const GroupRecord& group);
  Result<std::optional<GroupRecord>> find_group(const std::string& name);

  Result<void> add_token(const TokenRecord& token);
  Result<std::optional<TokenRecord>> find_token(const std::string& id);

  Result<std::optional<NodeRecord>> find_node(const std::string& username);

  // In one transaction: spends one use of the token (Errc::unauthorized when it has none left
  // or has expired at `now`), stores the certificate, marks the node's previous certificate
  // "superseded" and makes this one the node's current certificate. Nothing changes on error.
  Result<void> record_enrollment(const std::string& token_id, const CertificateRecord& cert,
                                 TimePoint now);

  // In one transaction: checks that `old_serial` is still the node's current, active, unexpired
  // certificate at `now` (Errc::unauthorized otherwise), supersedes it, stores `cert` and makes it
  // current. Nothing changes on error.
  Result<void> record_renewal(const std::string& old_serial, const CertificateRecord& cert, TimePoint now);

  Result<std::optional<CertificateRecord>> find_certificate(const std::string& serial);

  // A cheap query that proves the database answers (for /healthz).
  Result<void> ping();

 private:
  explicit Store(sqlite3* db);
  sqlite3* db_ = nullptr;
  std::unique_ptr<std::mutex> mutex_;
};

}  // namespace evpn::ca::store
