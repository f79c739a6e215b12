#pragma once
// Putting a certificate from the CA in place, shared by enroll and renew: check the answer, prove
// that the new pair logs in to XMPP, and only then commit it (and the EdgeVPN config).

#include "agent/exit_codes.hpp"
#include "agent/node_files.hpp"
#include "agent/xmpp_login.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/protocol/enrollment.hpp"

#include <chrono>
#include <string>

namespace evpn::agent {

struct InstallRequest {
  const protocol::EnrollmentResult* answer = nullptr;
  const crypto::Key* key = nullptr;          // the new key the certificate must match
  const crypto::Certificate* root = nullptr;  // the pinned root
  std::string username;
  std::string state_dir;
  bool update_evio_config = true;  // merge the overlay into state.evio_config
  std::string xmpp_ca;             // trust anchors for the XMPP server ("" = the pinned root)
  std::chrono::milliseconds login_deadline{15000};
  NodeState state;  // ca_url, fingerprint, evio_config and key_type; the rest comes from the answer
};

struct Installed {
  LoginReport login;
  NodeState state;
};

// Nothing on the node changes unless every step succeeds. Exit codes: exit_refused for an
// answer that is not what was asked for, exit_transient when XMPP cannot be reached, exit_login
// when the new pair does not log in, exit_local for file-system failures.
Outcome<Installed> install(const InstallRequest& request);

}  // namespace evpn::agent
