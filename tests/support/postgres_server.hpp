#pragma once
// A real PostgreSQL server on loopback for tests: initdb in a temporary directory, `postgres` on a
// free port with its socket in that directory, stopped by process id. Run as root (CI), the server
// runs as the `postgres` system user, which owns the directory: PostgreSQL refuses to run as root.
// Set-up failures throw std::runtime_error carrying the server's log.

#include "tests/support/process.hpp"

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace evpn::test {

class PostgresServer {
 public:
  struct Options {
    // Off for tests (faster, and nothing here survives a power cut anyway); on for benchmarks.
    bool fsync = false;
  };

  // Whether PostgreSQL's server programs (initdb, postgres) are installed; tests that need them
  // skip without.
  static bool installed();

  // Runs initdb (superuser "evpn", password authentication on loopback) and picks a free port;
  // does not start the server.
  explicit PostgresServer(Options options);
  PostgresServer() : PostgresServer(Options{}) {}
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();

  // Starts the server; returns once it accepts connections. Throws with the log when it exits or
  // is not ready within 30 s.
  void start();
  // Sends `signal` (SIGINT: fast shutdown; SIGQUIT: immediate, as a crash) and waits for the
  // server to exit. Does nothing when it is not running.
  void stop(int signal = SIGINT);
  bool running();
  // The postmaster's process id (its backends are its children); -1 when it is not running.
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  std::uint16_t port() const { return port_; }
  // postgresql://evpn@127.0.0.1:<port>/<database>, without the password.
  std::string url(const std::string& database) const;
  const std::string& password() const { return password_; }
  // The password, alone in a 0600 file (for --store-password-file).
  std::filesystem::path password_file() const { return dir_.path() / "password"; }
  // Creates the empty database `name` (letters, digits and '_'); answers url(name).
  std::string create_database(const std::string& name);
  // Runs fixed SQL in `database` as the superuser; throws when it fails.
  void execute(const std::string& database, const std::string& sql);
  std::string log_text() const;

 private:
  // `argv` as the user that owns the cluster.
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;

  Options options_;
  TempDir dir_;
  std::uint16_t port_;
  std::string password_;
  std::optional<BackgroundProcess> process_;
};

}  // namespace evpn::test
