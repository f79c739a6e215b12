#include "ca-service/store/schema.hpp"

#include <iterator>
#include <regex>
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

// Version 3: the number of the last CRL signed, so that CRL numbers increase whichever process (or
// replica) signs; and the attempts that the rate limits count, so that replicas share them.
constexpr const char* kVersion3 = R"sql(
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO counters(name, value) VALUES('crl_number', 0);
CREATE TABLE attempts (
  kind    TEXT NOT NULL,
  subject TEXT NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX attempts_by_subject ON attempts(kind, subject, at);
CREATE INDEX attempts_by_time ON attempts(kind, at);
)sql";

constexpr const char* kMigrations[] = {kVersion1, kVersion2, kVersion3};
constexpr long long kSchemaVersion = std::size(kMigrations);

// The migrations are written for SQLite. PostgreSQL gets them with 64-bit integers (times), an
// identity column for the audit log's ids, and text compared byte by byte (ORDER BY serial,
// username) as SQLite does, whatever the database's locale.
std::string for_dialect(Dialect dialect, const char* sql) {
  if (dialect == Dialect::sqlite) return sql;
  std::string out = std::regex_replace(sql, std::regex("INTEGER PRIMARY KEY AUTOINCREMENT"),
                                       "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY");
  out = std::regex_replace(out, std::regex("\\bINTEGER\\b"), "BIGINT");
  return std::regex_replace(out, std::regex("\\bTEXT\\b"), "TEXT COLLATE \"C\"");
}

// SQLite keeps the version in the file's header (user_version); PostgreSQL in a table of its own.
Result<long long> schema_version(Connection& db) {
  if (db.dialect() == Dialect::postgresql)
    if (auto r = db.exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"); !r) return r.error();
  auto s = Statement::prepare(db, db.dialect() == Dialect::sqlite ? "PRAGMA user_version"
                                                                  : "SELECT COALESCE(max(version), 0) FROM schema_version");
  if (!s) return s.error();
  if (auto row = s->step(); !row) return row.error();
  return s->integer(0);
}

Result<void> set_schema_version(Connection& db, long long version) {
  // PRAGMA takes no bound parameters.
  if (db.dialect() == Dialect::sqlite) return db.exec("PRAGMA user_version = " + std::to_string(version));
  if (auto r = db.exec("DELETE FROM schema_version"); !r) return r;
  return run(db, "INSERT INTO schema_version(version) VALUES(?)", version);
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
    if (auto r = db.exec(for_dialect(db.dialect(), kMigrations[version - 1])); !r) return r;
    if (auto r = set_schema_version(db, version); !r) return r;
  }
  return tx->commit();
}

}  // namespace evpn::ca::store
