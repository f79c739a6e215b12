// evpn-agent: puts this node on an EdgeVPN network. Parses the command line and calls one
// run_<command> per sub-command.

#include "agent/check.hpp"
#include "agent/enroll.hpp"
#include "agent/renew.hpp"
#include "agent/log.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  using namespace evpn::agent;
  CLI::App app{"evpn-agent: enroll this node with an evpn-ca service and configure EdgeVPN for x509 login."};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();

  // The CA's worst case for one request: up to 10 s waiting for the rate limiter to hear it, at
  // most 5 calls to its XMPP directory, each bounded by directory.timeout_ms (default 5000 ms), and
  // up to 5 s for the store. The agent waits longer, so that it does not give up on an answer the
  // CA is about to commit (the retry would be answered again, but only after another wait).
  const std::string timeout_help =
      "seconds allowed for each whole exchange with the CA (connect, TLS, request and answer under one deadline) "
      "and for the XMPP login. Keep it above the CA's worst case for one request: 10 s waiting for its rate "
      "limiter + 5 directory calls x directory.timeout_ms (default 5000 ms) + 5 s for its store = 40 s";
  EnrollOptions enroll;
  long timeout_s = 60;
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
  enroll_cmd->add_option("--timeout", timeout_s, timeout_help)
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  enroll_cmd->add_flag("--json", enroll.json, "print a machine-readable result on stdout");
  enroll_cmd->add_flag("--install-root", enroll.install_root,
                       "after enrolling, copy the pinned root into the system trust store and run "
                       "update-ca-certificates (EdgeVPN trusts the XMPP server only through that store); a failure "
                       "there exits 6 but keeps the enrollment");
  enroll_cmd->add_option("--system-trust-dir", enroll.system_trust_dir,
                         "where --install-root writes evpn-enroll-<fingerprint>.crt; update-ca-certificates runs only "
                         "for the default [/usr/local/share/ca-certificates]");

  RenewOptions renew;
  long renew_timeout_s = 60, retry_for_s = 300;
  auto* renew_cmd = app.add_subcommand(
      "renew",
      "renew the certificate when a third of its lifetime is left: new key, certificate over mutual TLS, XMPP login "
      "with the new pair, then an atomic swap (the previous pair is kept). Does nothing and exits 0 when not due.\n"
      "Exit codes: as enroll, plus 7 when the certificate expired or the CA no longer accepts it and no token is "
      "configured: enroll again.");
  renew_cmd->add_option("--state-dir", renew.state_dir, "the node's state directory")->capture_default_str();
  renew_cmd->add_option("--config", renew.config_file,
                        "agent config (JSON); with a \"token\" in it an expired node enrolls again");
  renew_cmd->add_flag("--force", renew.force, "renew even when not due");
  renew_cmd->add_option("--on-renew", renew.on_renew,
                        "shell command run after a successful swap, e.g. 'systemctl restart evio'; it gets "
                        "EVPN_CERT_FILE, EVPN_KEY_FILE, EVPN_ROOT_FILE, EVPN_SERIAL, EVPN_USERNAME, EVPN_NOT_AFTER");
  renew_cmd->add_option("--xmpp-ca", renew.xmpp_ca, "PEM file trusted for the XMPP server's certificate [the pinned CA root]");
  renew_cmd->add_option("--timeout", renew_timeout_s, timeout_help)
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  renew_cmd->add_option("--retry-for", retry_for_s, "seconds to keep retrying transient failures (0: one attempt)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  renew_cmd->add_flag("--json", renew.json, "print a machine-readable result on stdout");

  CheckOptions check;
  long check_timeout_s = 15;
  auto* check_cmd = app.add_subcommand(
      "check",
      "check this node's health: key and certificate present, key mode 0600, key matches certificate, chain to the "
      "pinned root, days left versus the renewal window, whether the CA still has the certificate as current "
      "(GET /v1/status), EdgeVPN config, and a real SASL EXTERNAL login.\n"
      "Exit codes (Nagios): 0 OK; 1 WARNING (renewal due, expiring within the warning window); 2 CRITICAL (login fails, "
      "expired, mismatch, ...); 3 UNKNOWN (not enrolled, bad command line).");
  check_cmd->add_option("--state-dir", check.state_dir, "the node's state directory")->capture_default_str();
  check_cmd->add_flag("--json", check.json, "print every check as JSON on stdout");
  check_cmd->add_option("--metrics", check.metrics_file,
                        "also write Prometheus gauges to this file (atomically), e.g. for node_exporter's textfile "
                        "collector");
  check_cmd->add_option("--warn-days", check.warn_days,
                        "WARNING when the certificate expires within this many days [default: a sixth of its "
                        "lifetime, at most 7 days]")
      ->check(CLI::Range(0, 36500));
  check_cmd->add_option("--xmpp-ca", check.xmpp_ca,
                        "PEM file trusted for the XMPP server's certificate [the pinned CA root]");
  check_cmd->add_option("--timeout", check_timeout_s, "seconds allowed for the XMPP login, and for the CA's answer to GET /v1/status")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A monitoring system reads a broken check command line as UNKNOWN, not as CRITICAL.
    if (app.exit(e) == 0) return exit_ok;
    return check_cmd->parsed() ? static_cast<int>(CheckStatus::unknown) : exit_usage;
  }
  log::set_level(log_level);
  try {
    if (*renew_cmd) {
      renew.timeout = std::chrono::seconds(renew_timeout_s);
      renew.retry_for = std::chrono::seconds(retry_for_s);
      return run_renew(renew);
    }
    if (*enroll_cmd) {
      enroll.timeout = std::chrono::seconds(timeout_s);
      return run_enroll(enroll);
    }
    if (*check_cmd) {
      check.timeout = std::chrono::seconds(check_timeout_s);
      return run_check(check);
    }
  } catch (const std::exception& e) {
    log::critical(std::string("unexpected failure: ") + e.what());
    return exit_local;
  }
  return exit_usage;
}
