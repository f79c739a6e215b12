#include "tests/support/postgres_server.hpp"

#include "common/crypto/certificate.hpp"

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace evpn::test {
namespace fs = std::filesystem;
namespace {

// Debian's PostgreSQL 15; a char array so that it is usable during static initialisation.
constexpr char bin_dir_name[] = "/usr/lib/postgresql/15/bin";
fs::path bin_dir() { return bin_dir_name; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The conninfo of `database` as the superuser, password included.
std::string conninfo(std::uint16_t port, const std::string& password, const std::string& database) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=evpn dbname=" + database + " password=" + password +
         " connect_timeout=5";
}

}  // namespace

bool PostgresServer::installed() { return fs::exists(bin_dir() / "initdb") && fs::exists(bin_dir() / "postgres"); }

std::vector<std::string> PostgresServer::as_owner(std::vector<std::string> argv) const {
  if (::geteuid() != 0) return argv;
  argv.insert(argv.begin(), {"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"});
  return argv;
}

PostgresServer::PostgresServer(Options options)
    : options_(options), dir_("evpn-postgres"), port_(free_port()), password_(crypto::to_hex(crypto::random_bytes(16))) {
  {
    std::ofstream out(password_file());
    out << password_ << "\n";
  }
  fs::permissions(password_file(), fs::perms::owner_read | fs::perms::owner_write);
  if (::geteuid() == 0) {
    const passwd* owner = ::getpwnam("postgres");
    if (!owner) throw std::runtime_error("running as root needs the `postgres` user (Debian's postgresql package)");
    for (const auto& path : {dir_.path(), password_file()})
      if (::chown(path.c_str(), owner->pw_uid, owner->pw_gid) != 0)
        throw std::runtime_error("cannot hand " + path.string() + " to the postgres user");
  }
  const RunResult r = run(as_owner({(bin_dir() / "initdb").string(), "-D", (dir_.path() / "data").string(), "-U", "evpn",
                                    "--pwfile=" + password_file().string(), "--auth-local=trust",
                                    "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync"}));
  if (r.exit_code != 0) throw std::runtime_error("initdb failed:\n" + r.out + r.err);
}

PostgresServer::~PostgresServer() { stop(); }

void PostgresServer::start() {
  if (running()) return;
  std::vector<std::string> argv{(bin_dir() / "postgres").string(),
                                "-D", (dir_.path() / "data").string(),
                                "-p", std::to_string(port_),
                                "-k", dir_.path().string(),
                                "-c", "listen_addresses=127.0.0.1",
                                "-c", "max_connections=200",
                                "-c", std::string("fsync=") + (options_.fsync ? "on" : "off")};
  process_.emplace(as_owner(argv), dir_.path() / "server.log");
  const std::string info = conninfo(port_, password_, "postgres");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (PQping(info.c_str()) != PQPING_OK) {
    if (!process_->alive() || std::chrono::steady_clock::now() > deadline) {
      process_.reset();
      throw std::runtime_error("PostgreSQL did not start:\n" + log_text());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void PostgresServer::stop(int signal) {
  if (!process_) return;
  process_->stop(signal, std::chrono::seconds(30));
  process_.reset();
}

bool PostgresServer::running() { return process_ && process_->alive(); }

std::string PostgresServer::url(const std::string& database) const {
  return "postgresql://evpn@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::create_database(const std::string& name) {
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    throw std::invalid_argument("a test database name is lower-case letters, digits and '_': " + name);
  // CREATE DATABASE takes no parameters; the name was checked above.
  execute("postgres", "CREATE DATABASE " + name);
  return url(name);
}

void PostgresServer::execute(const std::string& database, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo(port_, password_, database).c_str()),
                                                     PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("cannot connect to the test PostgreSQL: ") + PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), PQclear);
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
}

std::string PostgresServer::log_text() const { return read_file(dir_.path() / "server.log"); }

}  // namespace evpn::test
