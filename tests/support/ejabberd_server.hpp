#pragma once
// A real ejabberd 23.01 on loopback for integration tests: plain `erl -s ejabberd` as the
// current user, no Erlang distribution, SASL EXTERNAL only, the shipped config, provisioned over
// mod_http_api with HTTP basic authentication. Set-up failures throw std::runtime_error carrying
// the server's log.

#include "tests/support/process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace evpn::test {

// An account that logs in to mod_http_api.
struct ApiAccount {
  std::string jid;
  std::string password;
};

// One ejabberd VM with its own state directory; stopped by pid at destruction.
class EjabberdServer {
 public:
  struct Options {
    std::string domain = "evpn.test";
    std::filesystem::path server_pem;  // server certificate then key; must name `domain`
    std::filesystem::path ca_file;     // CA that client certificates must chain to
    std::filesystem::path state_dir;   // config, Mnesia spool and logs; created if missing
  };

  // Picks free loopback ports for c2s and the HTTP API; does not start the server.
  explicit EjabberdServer(Options options);
  EjabberdServer(const EjabberdServer&) = delete;
  EjabberdServer& operator=(const EjabberdServer&) = delete;
  ~EjabberdServer();

  // Writes the config and starts ejabberd, which registers ca_account() itself
  // (deploy/ejabberd/register-account.script); returns once /api/status answers that account and
  // the c2s port accepts. Throws with the log when it exits or is not ready within 30 s.
  void start();
  // SIGTERM, then SIGKILL after 10 s. Does nothing when it is not running.
  void stop();
  // stop() then start(), on the same ports and spool (users and groups survive).
  void restart();
  // Whether the next start() keeps the template's revocation rule (`deny: evpn_revoked` in the c2s
  // access rule); false runs ejabberd as an operator's own ejabberd.yml that lacks it would.
  void set_revocation_rule(bool kept) { revocation_rule_ = kept; }
  bool running();

  const std::string& domain() const { return options_.domain; }
  std::uint16_t c2s_port() const { return c2s_port_; }
  // "http://127.0.0.1:<port>/api"
  std::string api_url() const;
  // ejabberd's log files and the VM's output, e.g. to find
  // "Accepted c2s EXTERNAL authentication for node1@evpn.test".
  std::string log_text() const;
  // True once log_text() contains `text`; false after `timeout` (ejabberd logs asynchronously).
  bool wait_for_log(const std::string& text,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

  // The account evpn-ca calls the API as (evpn-ca@<domain>): the shipped api_permissions grant
  // it exactly the commands evpn-ca uses. Its password is also in ca_account_secret_file() (0600)
  // once the server has started, for `evpn-ca init --directory-secret-file`.
  const ApiAccount& ca_account() const { return ca_account_; }
  std::filesystem::path ca_account_secret_file() const;

  struct ApiAnswer {
    int status = 0;  // HTTP status; 0 when no answer came
    std::string body;
  };
  // POSTs `args` to <api_url>/<command> as the tests' own account, which may call every command
  // (a second api_permissions entry only the tests add), so tests can look at what evpn-ca did.
  ApiAnswer api(const std::string& command,
                const nlohmann::json& args = nlohmann::json::object()) const;
  // The same as `account`, or without credentials when it is nullopt.
  ApiAnswer api_as(const std::optional<ApiAccount>& account, const std::string& command,
                   const nlohmann::json& args = nlohmann::json::object()) const;
  // Registers <user>@<domain> with a random password (EXTERNAL ignores it); an existing user is fine.
  void register_user(const std::string& user) const;

 private:
  void write_config() const;

  Options options_;
  std::uint16_t c2s_port_;
  std::uint16_t http_port_;
  ApiAccount ca_account_;
  ApiAccount harness_account_;
  std::optional<BackgroundProcess> process_;
  bool revocation_rule_ = true;
};

}  // namespace evpn::test
