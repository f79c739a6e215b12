#pragma once
// Exit codes of evpn-agent enroll (documented in --help and the README). systemd units use them
// to retry transient failures and not permanent ones.

#include "common/result.hpp"

namespace evpn::agent {

enum ExitCode : int {
  exit_ok = 0,
  exit_usage = 2,      // bad command line or agent config
  exit_refused = 3,    // the CA refused for good (bad token, name not allowed): retrying won't help
  exit_transient = 4,  // CA or XMPP server unreachable, 503/429: retry later
  exit_login = 5,      // the new certificate did not log in to XMPP
  exit_local = 6,      // local I/O failure (state directory, EdgeVPN config)
};

}  // namespace evpn::agent
