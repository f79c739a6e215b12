#include "ca-service/store/migrate.hpp"

#include "ca-service/store/postgres.hpp"
#include "ca-service/store/sqlite.hpp"
#include "common/crypto/certificate.hpp"

#include <memory>
#include <vector>

namespace evpn::ca::store {
namespace {

struct Table {
  const char* name;
  const char* columns;
  int width;
};

// Every table of schema version 3, parents before the tables that refer to them.
constexpr Table kTables[] = {
    {"groups", "name, overlay, lifetime_seconds, created_at", 4},
    {"tokens", "id, secret_hash, group_name, username, expires_at, uses_left, created_at, revoked_at, adopt_existing", 9},
    {"certificates",
     "serial, username, group_name, not_before, not_after, pem, status, issued_at, token_id, revoked_at, "
     "revocation_reason, renewed_from",
     12},
    {"nodes", "username, group_name, current_serial", 3},
    {"pending_lockouts", "username, serial, since, attempts, last_error", 5},
    {"accounts", "username, origin, since", 3},
    {"audit", "id, at, action, username, serial, token_id, detail", 7},
    {"counters", "name, value", 2},
    {"attempts", "kind, subject, at", 3},
};

// Copies `table` row by row; values go over as text, which PostgreSQL casts to each column's type.
Result<long long> copy_table(Connection& from, Connection& to, const Table& table) {
  auto rows = from.query(std::string("SELECT ") + table.columns + " FROM " + table.name, {});
  if (!rows) return rows.error();
  std::string insert = std::string("INSERT INTO ") + table.name + "(" + table.columns + ") ";
  // The audit log keeps its ids; the schema makes them itself otherwise.
  if (std::string_view(table.name) == "audit") insert += "OVERRIDING SYSTEM VALUE ";
  insert += "VALUES(?";
  for (int i = 1; i < table.width; ++i) insert += ", ?";
  insert += ")";
  // A new store's schema has its counters already: the copied values replace them.
  if (std::string_view(table.name) == "counters") insert += " ON CONFLICT(name) DO UPDATE SET value = excluded.value";
  long long copied = 0;
  for (;;) {
    auto row = (*rows)->step();
    if (!row) return row.error();
    if (!*row) return copied;
    std::vector<Value> values;
    for (int col = 0; col < table.width; ++col)
      values.push_back((*rows)->is_null(col) ? Value(nullptr) : Value((*rows)->text(col)));
    if (auto r = to.query(insert, values); !r) return with_context(r.error(), std::string("copying ") + table.name);
    ++copied;
  }
}

Result<StoreSummary> summarize(Connection& db) {
  StoreSummary summary;
  for (const Table& table : kTables) {
    auto count = Statement::prepare(db, std::string("SELECT count(*) FROM ") + table.name);
    if (!count) return count.error();
    if (auto row = count->step(); !row) return row.error();
    summary.rows[table.name] = count->integer(0);
  }
  auto certificates = Statement::prepare(db, "SELECT serial, status, pem FROM certificates ORDER BY serial");
  if (!certificates) return certificates.error();
  std::string all;
  for (;;) {
    auto row = certificates->step();
    if (!row) return row.error();
    if (!*row) break;
    all += certificates->text(0) + '\n' + certificates->text(1) + '\n' + certificates->text(2) + '\n';
  }
  summary.certificates_sha256 = crypto::to_hex(crypto::sha256(all));
  return summary;
}

}  // namespace

Result<StoreSummary> copy_to_postgres(const std::filesystem::path& file, const StoreLocation& to) {
  if (!std::filesystem::exists(file)) return fail(Errc::not_found, file.string() + " does not exist");
  // Both stores at the current schema: the source migrated as any older store would be on opening.
  {
    auto source = Store::open(file);
    if (!source) return source.error();
    auto target = Store::open(to);
    if (!target) return target.error();
    auto unused = target->unused();
    if (!unused) return unused.error();
    if (!*unused)
      return fail(Errc::conflict, "the store " + to.target + " already holds a CA's state; migrate into an empty "
                                  "database");
  }
  auto handle = open_connection(file);
  if (!handle) return handle.error();
  SqliteConnection from(std::move(*handle));
  auto target = PostgresConnection::open({to.target, to.password});
  if (!target) return target.error();
  PostgresConnection& into = **target;
  {
    auto tx = Transaction::begin(into);
    if (!tx) return tx.error();
    for (const Table& table : kTables)
      if (auto r = copy_table(from, into, table); !r) return r.error();
    if (auto r = into.exec("SELECT setval(pg_get_serial_sequence('audit', 'id'), "
                           "(SELECT COALESCE(max(id), 0) + 1 FROM audit), false)");
        !r)
      return r.error();
    if (auto r = tx->commit(); !r) return r.error();
  }
  auto before = summarize(from);
  if (!before) return before.error();
  auto after = summarize(into);
  if (!after) return after.error();
  if (before->rows != after->rows || before->certificates_sha256 != after->certificates_sha256)
    return fail(Errc::internal, "the copy in " + to.target + " differs from " + file.string() +
                                    " (row counts or certificate checksum); the CA still uses " + file.string());
  return *after;
}

}  // namespace evpn::ca::store
