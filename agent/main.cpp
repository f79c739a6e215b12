// evpn-agent: puts this node on an EdgeVPN network. Parses the command line and calls one
// run_<command> per sub-command.

#include "agent/enroll.hpp"
#include "common/log.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  using namespace evpn::agent;
  CLI::App app{"evpn-agent: enroll this node with an evpn-ca service and configure EdgeVPN for x509 login."};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();

  EnrollOptions enroll;
  long timeout_s = 30;
  auto* enroll_cmd = app.add_subcommand(
      "enroll",
      "generate a key, get a certificate from the CA, verify an XMPP login with it, then write the key, certificate "
      "and EdgeVPN config. Nothing on the node changes unless every step succeeds.\n"
      "Exit codes: 0 enrolled; 2 usage or config error; 3 refused by the CA for good (bad token or fingerprint, "
      "name not allowed): do not retry; 4 transient (CA or XMPP server unreachable or busy): retry later; "
      "5 the new certificate did not log in to XMPP; 6 local failure (state directory, EdgeVPN config).");
  enroll_cmd->add_option("--config", enroll.config_file,
                         "agent config (JSON) supplying any option below, e.g. /etc/evpn-agent/agent.json");
  enroll_cmd->add_option("--ca-url", enroll.ca_url, "CA service URL, e.g. https://ca.example.org:8443");
  enroll_cmd->add_option("--fingerprint", enroll.fingerprint, "SHA-256 fingerprint of the CA root (64 hex chars)");
  enroll_cmd->add_option("--token", enroll.token, "enrollment token from `evpn-ca token create`");
  enroll_cmd->add_option("--username", enroll.username, "this node's XMPP username (lower case)");
  enroll_cmd->add_option("--state-dir", enroll.state_dir, "where key, certificate and state go [/var/lib/evpn-agent]");
  enroll_cmd->add_option("--evio-config", enroll.evio_config, "EdgeVPN config to update [/etc/opt/evio/config.json]");
  enroll_cmd->add_option("--xmpp-ca", enroll.xmpp_ca,
                         "PEM file trusted for the XMPP server's certificate [the pinned CA root]");
  enroll_cmd->add_option("--key-type", enroll.key_type, "ec-p256, rsa-2048 or rsa-3072 [ec-p256]");
  enroll_cmd->add_option("--timeout", timeout_s, "seconds allowed for each exchange with the CA and for the login")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  enroll_cmd->add_flag("--json", enroll.json, "print a machine-readable result on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }
  evpn::init_logging("evpn-agent", log_level);
  try {
    if (*enroll_cmd) {
      enroll.timeout = std::chrono::seconds(timeout_s);
      return run_enroll(enroll);
    }
  } catch (const std::exception& e) {
    spdlog::critical("unexpected failure: {}", e.what());
    return exit_local;
  }
  return exit_usage;
}
