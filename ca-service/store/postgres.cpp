#include "ca-service/store/postgres.hpp"

#include "ca-service/log.hpp"

#include <cstdlib>
#include <string_view>

namespace evpn::ca::store {
namespace {

// The key of the advisory lock that a write transaction holds: any number no other user of the
// database takes; this one spells "evpn-ca" in ASCII.
constexpr const char* kBeginWrite = "SELECT pg_advisory_xact_lock(28559197904659297)";

// PostgreSQL numbers its parameters: the n-th `?` outside a quoted literal becomes $n.
std::string number_parameters(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += '$' + std::to_string(++n);
      continue;
    }
    out += c;
  }
  return out;
}

class PostgresRows final : public Rows {
 public:
  explicit PostgresRows(PgResult result) : result_(std::move(result)) {}

  Result<bool> step() override { return ++row_ < PQntuples(result_.get()); }
  bool is_null(int col) const override { return PQgetisnull(result_.get(), row_, col) != 0; }
  std::string text(int col) const override {
    return std::string(PQgetvalue(result_.get(), row_, col),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
  }
  long long integer(int col) const override { return std::strtoll(PQgetvalue(result_.get(), row_, col), nullptr, 10); }

 private:
  PgResult result_;
  int row_ = -1;
};

std::string trimmed(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

bool connection_trouble(std::string_view sqlstate) {
  // Connection exceptions, the server shutting down or starting, resources exhausted, and
  // transactions the server aborted so that they may be tried again.
  return sqlstate.starts_with("08") || sqlstate.starts_with("57P") || sqlstate.starts_with("53") ||
         sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "25P03";
}

// The Error for a failed statement `what`: a duplicate is a conflict, a missing reference
// not_found, a lost or busy server unavailable (its detail only logged: the 503 reaches the
// client as it is), anything else internal.
Error pg_error(PGconn* conn, const PGresult* result, std::string_view what) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state ? state : "";
  const std::string message = trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  const std::string detail = std::string(what) + ": " + message;
  if (PQstatus(conn) != CONNECTION_OK || connection_trouble(sqlstate)) {
    spdlog::warn("the PostgreSQL store is unavailable: {}", detail);
    return fail(Errc::unavailable, "the CA store is unavailable; retry in a moment");
  }
  if (sqlstate == "23505") return fail(Errc::conflict, "the CA store refused a duplicate: " + detail);
  if (sqlstate == "23503") return fail(Errc::not_found, "the CA store refused a reference to a missing row: " + detail);
  return fail(Errc::internal, "the CA store failed: " + detail);
}

bool succeeded(const PGresult* result) {
  const auto status = PQresultStatus(result);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

Result<void> check_postgres_url(const std::string& url) {
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://"))
    return fail(Errc::invalid_request, "the store must be a postgresql://USER@HOST:PORT/DB URL, not '" + url + "'");
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(url.c_str(), &error),
                                                                        PQconninfoFree);
  if (!options) {
    std::string why = error ? trimmed(error) : "out of memory";
    PQfreemem(error);
    return fail(Errc::invalid_request, "the store URL is not one libpq accepts: " + why);
  }
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val && *o->val)
      return fail(Errc::invalid_request,
                  "the store URL carries a password, which would be kept in config.json in clear: drop it from the "
                  "URL and give it with --store-password-file, PGPASSWORD or ~/.pgpass");
  return {};
}

Result<std::unique_ptr<PostgresConnection>> PostgresConnection::open(const PostgresTarget& target, bool read_only) {
  if (auto r = check_postgres_url(target.url); !r) return r.error();
  // A transaction left open by a frozen replica would stop every writer, and a writer waits for the
  // others no longer than SQLite's busy timeout: both end in a 503 that the client retries.
  std::string options = "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=5000";
  if (read_only) options += " -c default_transaction_read_only=on";
  // The URL comes after the defaults so that it may override them; the password after the URL.
  std::vector<const char*> keys{"connect_timeout", "application_name", "options", "dbname"};
  std::vector<const char*> values{"5", "evpn-ca", options.c_str(), target.url.c_str()};
  if (target.password) {
    keys.push_back("password");
    values.push_back(target.password->c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgHandle conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) return fail(Errc::internal, "libpq could not allocate a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK)
    return fail(Errc::unavailable, "cannot connect to the CA store " + target.url + ": " +
                                       trimmed(PQerrorMessage(conn.get())));
  // The schema's IF NOT EXISTS and the like would print notices on stderr.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PostgresConnection>(new PostgresConnection(std::move(conn)));
}

Result<void> PostgresConnection::usable() {
  if (PQstatus(conn_.get()) == CONNECTION_OK) return {};
  // What the lost transaction did is gone with it; a new connection must not carry on its work.
  if (in_transaction_) return pg_error(conn_.get(), nullptr, "the connection was lost during a transaction");
  PQreset(conn_.get());
  prepared_.clear();
  if (PQstatus(conn_.get()) != CONNECTION_OK) return pg_error(conn_.get(), nullptr, "connecting again");
  spdlog::info("connected to the PostgreSQL store again");
  return {};
}

Result<PgResult> PostgresConnection::execute(const std::string& sql, const std::vector<Value>& params) {
  // A statement outside a transaction that finds the connection lost (the server restarted since
  // the last one) is tried once more on a new connection; inside one, it fails.
  for (int attempt = 0;; ++attempt) {
    if (auto r = usable(); !r) return r.error();
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* text = std::get_if<std::string>(&params[i]))
        values[i] = text->c_str();
      else if (const auto* number = std::get_if<long long>(&params[i]))
        values[i] = (texts[i] = std::to_string(*number)).c_str();
    }
    PgResult result;
    if (params.empty()) {
      result.reset(PQexec(conn_.get(), sql.c_str()));
    } else if (auto name = prepared(sql, static_cast<int>(params.size()))) {
      result.reset(PQexecPrepared(conn_.get(), name->c_str(), static_cast<int>(params.size()), values.data(), nullptr,
                                  nullptr, 0));
    } else if (attempt == 0 && !in_transaction_ && PQstatus(conn_.get()) != CONNECTION_OK) {
      continue;
    } else {
      return name.error();
    }
    if (result && succeeded(result.get())) {
      changes_ = std::strtoll(PQcmdTuples(result.get()), nullptr, 10);
      return result;
    }
    if (attempt == 0 && !in_transaction_ && PQstatus(conn_.get()) != CONNECTION_OK) continue;
    return pg_error(conn_.get(), result.get(), sql);
  }
}

Result<std::string> PostgresConnection::prepared(const std::string& sql, int parameters) {
  if (auto found = prepared_.find(sql); found != prepared_.end()) return found->second;
  std::string name = "evpn_" + std::to_string(prepared_.size());
  PgResult result(PQprepare(conn_.get(), name.c_str(), number_parameters(sql).c_str(), parameters, nullptr));
  if (!result || !succeeded(result.get())) return pg_error(conn_.get(), result.get(), sql);
  prepared_.emplace(sql, name);
  return name;
}

Result<std::unique_ptr<Rows>> PostgresConnection::query(const std::string& sql, const std::vector<Value>& params) {
  auto result = execute(sql, params);
  if (!result) return result.error();
  return std::unique_ptr<Rows>(std::make_unique<PostgresRows>(std::move(*result)));
}

Result<void> PostgresConnection::exec(const std::string& sql) {
  if (auto r = execute(sql, {}); !r) return r.error();
  return {};
}

Result<void> PostgresConnection::begin() {
  if (auto r = exec("BEGIN"); !r) return r;
  in_transaction_ = true;
  if (auto r = exec(kBeginWrite); !r) {
    rollback();
    return r;
  }
  return {};
}

Result<void> PostgresConnection::commit() {
  auto result = execute("COMMIT", {});
  in_transaction_ = false;
  if (!result) return result.error();
  // COMMIT of a transaction that failed earlier rolls it back and says so only in its tag.
  if (std::string_view(PQcmdStatus(result->get())) != "COMMIT")
    return fail(Errc::internal, "the CA store rolled back a transaction that had failed");
  return {};
}

void PostgresConnection::rollback() noexcept {
  if (!in_transaction_) return;
  in_transaction_ = false;
  if (PQstatus(conn_.get()) == CONNECTION_OK) PgResult(PQexec(conn_.get(), "ROLLBACK"));
}

Result<bool> PostgresConnection::try_lock(long long key) {
  auto s = Statement::prepare(*this, "SELECT CASE WHEN pg_try_advisory_lock(CAST(? AS BIGINT)) THEN 1 ELSE 0 END",
                              key);
  if (!s) return s.error();
  if (auto row = s->step(); !row) return row.error();
  return s->integer(0) == 1;
}

Result<void> PostgresConnection::unlock(long long key) {
  return run(*this, "SELECT pg_advisory_unlock(CAST(? AS BIGINT))", key);
}

}  // namespace evpn::ca::store
