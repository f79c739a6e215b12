#pragma once
// A real Openfire for the opt-in integration suite: a copy of the installation the test is given
// (EVPN_OPENFIRE_HOME), set up headless by Openfire's autosetup on its first start (embedded
// database, the REST API plugin enabled with a shared secret), every listener on 127.0.0.1 on
// free ports, and the listeners the tests do not use switched off. The given installation is
// never written to. Set-up failures throw std::runtime_error carrying Openfire's log.

#include "tests/support/process.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace evpn::test {

class OpenfireServer {
 public:
  struct Options {
    std::filesystem::path installation;  // an unpacked Openfire: bin/, lib/, conf/, plugins/restapi.jar
    std::filesystem::path home;          // where the copy goes; must not exist yet
    std::string domain = "evpn.test";
    std::string secret;  // plugin.restapi.secret
  };

  // The installation named by EVPN_OPENFIRE_HOME; nullopt when the variable is unset or empty.
  static std::optional<std::filesystem::path> from_environment();

  // Copies the installation, picks the ports and writes conf/openfire.xml; does not start it.
  explicit OpenfireServer(Options options);
  OpenfireServer(const OpenfireServer&) = delete;
  OpenfireServer& operator=(const OpenfireServer&) = delete;
  ~OpenfireServer();

  // Starts bin/openfire.sh and returns once the REST API answers an authenticated request and
  // the client port accepts. Throws with the log when it exits or is not ready within 180 s.
  void start();
  // SIGTERM (Openfire shuts down cleanly), SIGKILL after 30 s. Does nothing when not running.
  void stop();
  void restart();

  const std::filesystem::path& home() const { return options_.home; }
  const std::string& domain() const { return options_.domain; }
  const std::string& secret() const { return options_.secret; }
  std::uint16_t c2s_port() const { return c2s_port_; }
  // "http://127.0.0.1:<admin port>/plugins/restapi/v1"
  std::string api_url() const;
  // logs/openfire.log and the JVM's output.
  std::string log_text() const;

  struct ApiAnswer {
    int status = 0;  // 0: no answer
    std::string body;
  };
  // One REST API call with the shared secret, JSON both ways.
  ApiAnswer api(const std::string& method, const std::string& path, const std::string& body = "") const;
  // POST /system/properties (takes effect at once for most properties; some only at a restart).
  void set_property(const std::string& key, const std::string& value) const;

 private:
  void write_config() const;

  Options options_;
  std::uint16_t c2s_port_;
  std::uint16_t admin_port_;
  std::optional<BackgroundProcess> process_;
};

}  // namespace evpn::test
