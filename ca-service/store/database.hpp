#pragma once
// What the store's queries need of a database, whichever it is: a connection that runs one SQL
// statement with bound parameters, the rows it answers, and write transactions. sqlite.hpp and
// postgres.hpp implement it; store.cpp, schema.cpp and batch.cpp see only this. Only store/
// includes it.
//
// The queries are written once, in the SQL both databases accept: `?` for each parameter, times as
// unix seconds, truth values as 0/1 integers (CASE WHEN ... THEN 1 ELSE 0 END), no RETURNING of
// booleans.

#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace evpn::ca::store {

enum class Dialect { sqlite, postgresql };

// A bound parameter: NULL, an integer or text.
using Value = std::variant<std::nullptr_t, long long, std::string>;

// The rows a statement answers, read one at a time.
class Rows {
 public:
  virtual ~Rows() = default;
  // True when a row is available, false when there are no more.
  virtual Result<bool> step() = 0;
  virtual bool is_null(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual long long integer(int col) const = 0;
};

// One connection to the database. Not thread-safe: the Store guards each with a mutex.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // Runs one statement, `?` standing for each of `params` in order.
  virtual Result<std::unique_ptr<Rows>> query(const std::string& sql, const std::vector<Value>& params) = 0;
  // Runs fixed SQL without parameters, possibly several statements (the schema).
  virtual Result<void> exec(const std::string& sql) = 0;
  // How many rows the last INSERT, UPDATE or DELETE changed.
  virtual long long changes() = 0;
  // A write transaction. Writers take turns, in this process and in every other one using the same
  // database, so that a transaction that reads a token's uses or a node's current certificate and
  // then changes it never interleaves with another that does the same.
  virtual Result<void> begin() = 0;
  virtual Result<void> commit() = 0;
  virtual void rollback() noexcept = 0;
};

// A statement with its parameters bound, and typed reads of the columns of its current row.
class Statement {
 public:
  template <class... Args>
  static Result<Statement> prepare(Connection& db, const std::string& sql, const Args&... args) {
    std::vector<Value> params;
    params.reserve(sizeof...(args));
    (params.push_back(value(args)), ...);
    auto rows = db.query(sql, params);
    if (!rows) return rows.error();
    return Statement(std::move(*rows));
  }

  // True when a row is available, false when the statement is done.
  Result<bool> step() { return rows_->step(); }
  // Runs a statement that returns no rows.
  Result<void> run() {
    if (auto r = step(); !r) return r.error();
    return {};
  }

  std::string text(int col) const { return rows_->text(col); }
  std::optional<std::string> optional_text(int col) const {
    if (rows_->is_null(col)) return std::nullopt;
    return text(col);
  }
  long long integer(int col) const { return rows_->integer(col); }
  TimePoint time(int col) const { return from_unix(integer(col)); }
  std::optional<TimePoint> optional_time(int col) const {
    if (rows_->is_null(col)) return std::nullopt;
    return time(col);
  }

 private:
  explicit Statement(std::unique_ptr<Rows> rows) : rows_(std::move(rows)) {}

  static Value value(std::string_view v) { return std::string(v); }
  static Value value(const std::string& v) { return v; }
  static Value value(const char* v) { return std::string(v); }
  static Value value(const std::optional<std::string>& v) { return v ? Value(*v) : Value(nullptr); }
  static Value value(long long v) { return v; }
  static Value value(int v) { return static_cast<long long>(v); }
  static Value value(TimePoint t) { return to_unix(t); }
  static Value value(std::chrono::seconds s) { return static_cast<long long>(s.count()); }

  std::unique_ptr<Rows> rows_;
};

// Prepares `sql` with `args` and runs it, for statements that return no rows.
template <class... Args>
Result<void> run(Connection& db, const std::string& sql, const Args&... args) {
  auto s = Statement::prepare(db, sql, args...);
  if (!s) return s.error();
  return s->run();
}

// A write transaction (Connection::begin); rolls back unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& db) {
    if (auto r = db.begin(); !r) return r.error();
    return Transaction(db);
  }
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (db_) db_->rollback();
  }

  Result<void> commit() {
    if (auto r = db_->commit(); !r) return r;
    db_ = nullptr;
    return {};
  }

 private:
  explicit Transaction(Connection& db) : db_(&db) {}
  Connection* db_;
};

}  // namespace evpn::ca::store
