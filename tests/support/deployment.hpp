#pragma once
// A whole deployment for integration tests, as deploy/demo.sh builds it: a CA directory made by
// the real `evpn-ca init`, the XMPP server's certificate from `evpn-ca server-cert`, a real
// ejabberd provisioned by the CA, and `evpn-ca serve`, all on loopback in a temporary directory.
// Set-up failures throw std::runtime_error with the relevant log.

#include "tests/support/ejabberd_server.hpp"
#include "tests/support/process.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace evpn::test {

// One node's own directory: the agent's state directory and its EdgeVPN config.
struct TestNode {
  std::string username;
  std::filesystem::path dir;
  std::filesystem::path state() const { return dir / "state"; }
  std::filesystem::path config() const { return dir / "config.json"; }
  std::filesystem::path current() const { return state() / "current"; }
};

class Deployment {
 public:
  static constexpr const char* domain = "evpn.test";

  // `directory` is the CA's --directory: "ejabberd" (provisioning the ejabberd below as its
  // ca_account()) or another backend given with `directory_url`; `init_options` are added to
  // `evpn-ca init` (e.g. --store). Starts ejabberd and `evpn-ca serve`.
  explicit Deployment(const std::string& prefix = "evpn-it", const std::string& directory = "ejabberd",
                      const std::string& directory_url = "", const std::vector<std::string>& init_options = {});
  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;

  const std::filesystem::path& dir() const { return temp_.path(); }
  const std::filesystem::path& ca_dir() const { return ca_dir_; }
  const std::string& ca_url() const { return ca_url_; }
  // Where `serve` answers GET /metrics (metrics_listen), e.g. http://127.0.0.1:PORT/metrics.
  std::string metrics_url() const { return "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics"; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  const std::string& fingerprint() const { return fingerprint_; }
  EjabberdServer& xmpp() { return xmpp_; }
  std::filesystem::path serve_log() const { return dir() / "ca-serve.log"; }

  // `evpn-ca serve` on the same port and directory.
  void start_ca();
  void stop_ca();
  // SIGKILLs `evpn-ca serve`, as a crash or a power cut would end it.
  void kill_ca();

  // Runs `evpn-ca <args...> --dir <ca>`; returns stdout without its final newline, throws when it fails.
  std::string evpn_ca(std::vector<std::string> args) const;
  // `evpn-ca <command> --dir <ca> --json` (nodes, token list, audit), parsed; throws when it fails.
  nlohmann::json listing(std::vector<std::string> command) const;
  // The same as evpn_ca in the CA directory `ca_dir` (a replica's).
  static std::string evpn_ca_in(const std::filesystem::path& ca_dir, std::vector<std::string> args);
  // `evpn-ca group add`.
  void add_group(const std::string& name, const std::string& overlay, const std::string& lifetime = "30d") const;
  // `evpn-ca token create --group <group> <options...>`; returns the token.
  std::string token(const std::string& group, const std::vector<std::string>& options = {}) const;

  // A node with a fresh, empty directory.
  TestNode node(const std::string& username);
  // The evpn-agent enroll command line for `node` (with --json).
  std::vector<std::string> enroll_command(const TestNode& node, const std::string& token) const;
  RunResult enroll(const TestNode& node, const std::string& token, const Environment& env = {}) const;

 private:
  TempDir temp_;
  std::filesystem::path ca_dir_;
  EjabberdServer xmpp_;
  std::uint16_t ca_port_;
  std::string ca_url_;
  std::uint16_t metrics_port_;
  std::string fingerprint_;
  std::optional<BackgroundProcess> ca_;
  int nodes_ = 0;
};

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::filesystem::path& file);

}  // namespace evpn::test
