#pragma once
// `evpn-agent renew`: when a third of the certificate's lifetime is left, a new key and
// certificate over mutual TLS, an XMPP login with the new pair, then an atomic swap.

#include "agent/exit_codes.hpp"

#include <chrono>
#include <string>

namespace evpn::agent {

struct RenewOptions {
  std::string state_dir = "/var/lib/evpn-agent";
  std::string config_file;  // agent.json; a token there lets an expired node enroll again
  bool force = false;       // renew even when not due
  bool json = false;
  std::string on_renew;     // shell command run after a successful swap
  std::string xmpp_ca;      // trust anchors for the XMPP server ("" = the pinned root)
  std::chrono::milliseconds timeout{30000};  // for each exchange with the CA, and for the login
  std::chrono::seconds retry_for{300};       // total time spent retrying transient failures
};

// exit_ok when renewed or not due; exit_reenroll when the certificate expired (or the CA no longer
// accepts it) and no token is configured; otherwise the codes of enroll.
ExitCode run_renew(const RenewOptions& options);

}  // namespace evpn::agent
