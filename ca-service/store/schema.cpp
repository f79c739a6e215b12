#include "ca-service/store/schema.hpp"

#include <iterator>
#include <string>

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

Result<long long> schema_version(Connection& db) {
  auto s = Statement::prepare(db, "PRAGMA user_version");
  if (!s) return s.error();
  if (auto row = s->step(); !row) return row.error();
  return s->integer(0);
}

}  // namespace

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

}  // namespace evpn::ca::store
