#include "tests/support/store_inspection.hpp"

#include "ca-service/store/postgres.hpp"
#include "ca-service/store/sqlite.hpp"

namespace evpn::test {

namespace {

using ca::store::Connection;
using ca::store::Statement;

// A connection of its own to the store at `where`.
Result<std::unique_ptr<Connection>> connect(const ca::store::StoreLocation& where) {
  if (ca::store::is_postgres_url(where.target)) {
    auto connection = ca::store::PostgresConnection::open({where.target, where.password});
    if (!connection) return connection.error();
    return std::unique_ptr<Connection>(std::move(*connection));
  }
  auto handle = ca::store::open_connection(where.target);
  if (!handle) return handle.error();
  return std::unique_ptr<Connection>(std::make_unique<ca::store::SqliteConnection>(std::move(*handle)));
}

// Every row of `sql` on the store at `where`, each read by `read`.
template <class Read>
Result<void> each_row(const ca::store::StoreLocation& where, const std::string& sql, Read read) {
  auto connection = connect(where);
  if (!connection) return connection.error();
  auto s = Statement::prepare(**connection, sql);
  if (!s) return s.error();
  for (;;) {
    auto row = s->step();
    if (!row) return row.error();
    if (!*row) return {};
    read(*s);
  }
}

}  // namespace

Result<std::string> integrity_check(const std::filesystem::path& db) {
  // A damaged file answers one row per problem found.
  std::string answer;
  if (auto r = each_row({db.string()}, "PRAGMA integrity_check",
                        [&](const Statement& row) { answer += (answer.empty() ? "" : "\n") + row.text(0); });
      !r)
    return r.error();
  return answer;
}

Result<std::map<std::string, int>> certificates_per_token(const std::filesystem::path& db) {
  return certificates_per_token(ca::store::StoreLocation{db.string()});
}

Result<std::map<std::string, int>> certificates_per_token(const ca::store::StoreLocation& store) {
  std::map<std::string, int> counts;
  if (auto r = each_row(store, "SELECT token_id, count(*) FROM certificates WHERE token_id IS NOT NULL GROUP BY token_id",
                        [&](const Statement& row) { counts[row.text(0)] = static_cast<int>(row.integer(1)); });
      !r)
    return r.error();
  return counts;
}

}  // namespace evpn::test
