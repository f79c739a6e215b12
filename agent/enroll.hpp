#pragma once
// `evpn-agent enroll`: key, CSR, CA, checks, XMPP login, and only then the node's files.

#include "agent/exit_codes.hpp"

#include <chrono>
#include <string>

namespace evpn::agent {

// Empty strings are "not given": they are filled from the agent config file, then from defaults.
struct EnrollOptions {
  std::string config_file;  // optional agent.json (keys equal these member names)
  std::string ca_url;
  std::string fingerprint;
  std::string token;
  std::string username;
  std::string state_dir;    // default /var/lib/evpn-agent
  std::string evio_config;  // default /etc/opt/evio/config.json
  std::string xmpp_ca;      // trust anchors for the XMPP server; default: the pinned root
  std::string key_type;     // default ec-p256
  std::chrono::milliseconds timeout{30000};  // for each exchange with the CA, and for the XMPP login
  bool json = false;
  // After a successful enrollment, also put the pinned root into the system trust store (see
  // agent/system_trust.hpp); a failure there ends with exit_local but keeps the enrollment.
  bool install_root = false;
  std::string system_trust_dir;  // default /usr/local/share/ca-certificates
};

ExitCode run_enroll(EnrollOptions options);

}  // namespace evpn::agent
