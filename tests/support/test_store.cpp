#include "tests/support/test_store.hpp"

#include "tests/support/postgres_server.hpp"

#include <sqlite3.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace evpn::test {
namespace {

const bool skip_without_postgres = [] {
  if (on_postgres() && !PostgresServer::installed()) {
    std::cerr << "PostgreSQL's server programs are not installed (apt-get install postgresql): skipped\n";
    std::exit(77);
  }
  return false;
}();

// The database that stands for the store file `file`.
std::string database_of(const std::filesystem::path& file) {
  static std::mutex mutex;
  static std::map<std::string, std::string> databases;
  static int created = 0;
  std::lock_guard lock(mutex);
  std::string& name = databases[file.string()];
  if (file == ":memory:" || name.empty()) {
    name = "store_" + std::to_string(created++);
    test_postgres().create_database(name);
  }
  return name;
}

}  // namespace

bool on_postgres() {
  static const bool postgres = [] {
    const char* choice = std::getenv("EVPN_TEST_STORE");
    return choice && std::string(choice) == "postgresql";
  }();
  return postgres;
}

PostgresServer& test_postgres() {
  static const std::unique_ptr<PostgresServer> server = [] {
    auto started = std::make_unique<PostgresServer>();
    started->start();
    return started;
  }();
  return *server;
}

ca::store::StoreLocation store_location(const std::filesystem::path& file) {
  if (!on_postgres()) return {file.string()};
  return {test_postgres().url(database_of(file)), test_postgres().password()};
}

void execute_sql(const std::filesystem::path& file, const std::string& sql) {
  if (on_postgres()) return test_postgres().execute(database_of(file), sql);
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open(file.c_str(), &raw);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close);
  if (opened != SQLITE_OK || sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    throw std::runtime_error(sql + ": " + sqlite3_errmsg(db.get()));
}

void set_schema_version(const std::filesystem::path& file, int version) {
  execute_sql(file, on_postgres() ? "UPDATE schema_version SET version = " + std::to_string(version)
                                  : "PRAGMA user_version = " + std::to_string(version));
}

}  // namespace evpn::test
