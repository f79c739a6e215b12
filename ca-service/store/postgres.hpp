#pragma once
// The store's database in PostgreSQL, through libpq: a connection that reconnects by itself, and
// PostgreSQL's errors as Errors. Only store/ includes it.

#include "ca-service/store/database.hpp"
#include "ca-service/store/store.hpp"

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace evpn::ca::store {

struct ClosePg {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using PgHandle = std::unique_ptr<PGconn, ClosePg>;
struct ClearResult {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ClearResult>;

// Where a PostgreSQL store is: a libpq URL (postgresql://USER@HOST:PORT/DB?sslmode=...) and the
// password, when it does not come from libpq's environment or ~/.pgpass.
struct PostgresTarget {
  std::string url;
  std::optional<std::string> password{};
};

// One libpq connection. A connection the server dropped (a restart, a failover) makes the
// statement that finds out fail with Errc::unavailable; the next transaction or lookup connects
// again, so the CA recovers without a restart once the server is back.
class PostgresConnection final : public Connection {
 public:
  // `read_only`: every transaction is read-only (the Store's lookup connection).
  static Result<std::unique_ptr<PostgresConnection>> open(const PostgresTarget& target, bool read_only = false);

  Dialect dialect() const override { return Dialect::postgresql; }
  Result<std::unique_ptr<Rows>> query(const std::string& sql, const std::vector<Value>& params) override;
  Result<void> exec(const std::string& sql) override;
  long long changes() override { return changes_; }
  // BEGIN, then the transaction-scoped advisory lock that every writer of the database takes: the
  // writers of all replicas take turns as SQLite's BEGIN IMMEDIATE makes them, so every check-then-
  // change of the store holds across replicas. A replica that dies releases it with its connection.
  Result<void> begin() override;
  Result<void> commit() override;
  void rollback() noexcept override;

  // A session-scoped advisory lock on `key`, without waiting: true when this connection holds it
  // now. Released by unlock() or when the connection closes (the process died).
  Result<bool> try_lock(long long key);
  Result<void> unlock(long long key);

 private:
  explicit PostgresConnection(PgHandle conn) : conn_(std::move(conn)) {}
  // Connects again when the server dropped the connection, unless a transaction was open on it.
  Result<void> usable();
  Result<PgResult> execute(const std::string& sql, const std::vector<Value>& params);

  // The statement name `sql` is prepared under on this connection, preparing it on first use:
  // parsing and planning each statement again cost the server more than running most of them.
  Result<std::string> prepared(const std::string& sql, int parameters);

  PgHandle conn_;
  // SQL -> name, of the statements prepared on the current connection (a new one has none).
  std::unordered_map<std::string, std::string> prepared_;
  bool in_transaction_ = false;
  long long changes_ = 0;
};

}  // namespace evpn::ca::store
