#include "tests/support/store_inspection.hpp"

#include "ca-service/store/sqlite.hpp"

namespace evpn::test {

namespace {

using ca::store::Connection;
using ca::store::Statement;

// Every row of `sql` on the store `db`, each read by `read`.
template <class Read>
Result<void> each_row(const std::filesystem::path& db, const std::string& sql, Read read) {
  auto handle = ca::store::open_connection(db);
  if (!handle) return handle.error();
  Connection connection(std::move(*handle));
  auto s = Statement::prepare(connection, sql);
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
  if (auto r = each_row(db, "PRAGMA integrity_check",
                        [&](const Statement& row) { answer += (answer.empty() ? "" : "\n") + row.text(0); });
      !r)
    return r.error();
  return answer;
}

Result<std::map<std::string, int>> certificates_per_token(const std::filesystem::path& db) {
  std::map<std::string, int> counts;
  if (auto r = each_row(db, "SELECT token_id, count(*) FROM certificates WHERE token_id IS NOT NULL GROUP BY token_id",
                        [&](const Statement& row) { counts[row.text(0)] = static_cast<int>(row.integer(1)); });
      !r)
    return r.error();
  return counts;
}

}  // namespace evpn::test
