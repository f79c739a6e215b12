#pragma once
// Putting a certificate from the CA in place, shared by enroll and renew: check the answer, prove
// that the new pair logs in to XMPP, and only then commit it (and the EdgeVPN config).

#include "agent/exit_codes.hpp"
#include "agent/node_files.hpp"
#include "common/xmpp/login.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/protocol/enrollment.hpp"

#include <chrono>
#include <string>

namespace evpn::agent {

// How a pair is put in use: logged in with, committed, and named in EdgeVPN's config.
struct Activation {
  std::string state_dir;
  std::string xmpp_ca;  // trust anchors for the XMPP server ("" = the pair's root)
  std::chrono::milliseconds login_deadline{15000};
  // A renewal keeps a pair the CA issued even when it cannot log in yet: the CA has already made
  // it the node's current certificate, so a later run must finish it rather than ask again.
  bool keep_on_failure = false;
};

struct InstallRequest {
  const protocol::EnrollmentResult* answer = nullptr;
  const crypto::Key* key = nullptr;          // the new key the certificate must match
  const crypto::Certificate* root = nullptr;  // the pinned root
  std::string username;
  Activation activation;
  NodeState state;  // ca_url, fingerprint, evio_config and key_type; the rest comes from the answer
};

struct Installed {
  xmpp::LoginReport login;
  NodeState state;
};

// What install() writes of the CA's answer.
struct CheckedAnswer {
  std::string chain_pem;  // the node's certificate, then the chain
  std::string root_pem;   // the pinned root
};

// The CA's answer must be exactly what this node asked for, issued under the pinned root.
// Errc::invalid_request saying what is wrong otherwise.
Result<CheckedAnswer> check_answer(const protocol::EnrollmentResult& answer, const crypto::Key& key,
                                   const crypto::Certificate& pinned, const std::string& username, TimePoint now);

// Nothing in use on the node changes unless every step succeeds. Exit codes: exit_refused for an
// answer that is not what was asked for, exit_transient when XMPP cannot be reached, exit_login
// when the new pair does not log in, exit_local for file-system failures.
Outcome<Installed> install(const InstallRequest& request);

// Logs in with a staged pair, commits it (the `current` swap), then merges its overlay into
// state.evio_config. The pair is committed before the config is written, so that an
// interruption can leave an old config but never one that names a missing or mismatched pair.
Outcome<Installed> activate(const StagedPair& pair, NodeState state, const Activation& how);

}  // namespace evpn::agent
