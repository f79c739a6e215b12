#pragma once
// Exit codes of evpn-agent enroll and renew (documented in --help and the README). systemd units use them
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
  exit_reenroll = 7,   // renew: the certificate has expired (or was refused for good); enroll again
};

// An error together with the exit code it ends the command with.
struct Failure {
  ExitCode code;
  Error error;
};

// Ends a command with `f`: on stdout, when `as_json`, {"<done_key>": false, "error", "message",
// "exit_code"}; on stderr one line "evpn-agent: <what> failed: <detail>". Returns f.code.
ExitCode report_failure(const Failure& f, bool as_json, const char* done_key, const char* what);

template <class T>
using Outcome = boost::system::result<T, Failure>;

// How a refusal by the CA or the network ends the command: only "try again later" is transient.
inline ExitCode exit_for_ca(const Error& e) {
  switch (e.code) {
    case Errc::unavailable: return exit_transient;
    case Errc::io: return exit_local;
    case Errc::internal: return exit_transient;  // a CA-side fault; nothing on the node is wrong
    default: return exit_refused;
  }
}

}  // namespace evpn::agent
