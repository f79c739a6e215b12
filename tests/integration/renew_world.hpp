#pragma once
// Set-up shared by the renewal integration tests (renew_test.cpp, renew_crash_test.cpp): one real
// ejabberd and one `evpn-ca serve` per test binary, nodes enrolled with the real evpn-agent, and
// the checks both files make on a node's state directory.

#include "agent/node_files.hpp"
#include "common/xmpp/login.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/time.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/deployment.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace evpn::test::renewal {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;
using nlohmann::json;

inline const std::string domain = Deployment::domain;
// Group "brief" issues 1-minute certificates (renewal due after 40 s), "lab" 30-day ones.
inline const std::string brief_overlay = "102000F";
inline const std::string lab_overlay = "101000F";

inline void write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

// The --json output of the agent; fails the test when stdout is not a JSON object.
inline json output(const RunResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  json parsed = json::parse(r.out, nullptr, false);
  REQUIRE(parsed.is_object());
  return parsed;
}

// Every entry under `dir`: file contents, symlink targets and directories, by relative path.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const auto name = fs::relative(e.path(), dir).string();
    if (e.is_symlink())
      entries[name] = "-> " + fs::read_symlink(e.path()).string();
    else if (e.is_directory())
      entries[name] = "<dir>";
    else
      entries[name] = read_file(e.path());
  }
  return entries;
}

using Node = TestNode;
inline fs::path key_file(const Node& node) { return node.current() / "node.key"; }
inline fs::path cert_file(const Node& node) { return node.current() / "node.crt"; }

// The certificate in the node's current pair, or nullopt when it is missing or does not parse.
inline std::optional<crypto::Certificate> current_certificate(const Node& node) {
  auto cert = crypto::Certificate::from_pem(read_file(cert_file(node)));
  if (!cert) return std::nullopt;
  return std::move(*cert);
}

// True when current/node.key exists and is the key of current/node.crt.
inline bool pair_matches(const Node& node) {
  auto key = crypto::Key::from_pem(read_file(key_file(node)));
  auto cert = current_certificate(node);
  return key && cert && cert->matches(*key);
}

// True when current/node.crt chains to the pinned root.crt now.
inline bool chains_to_root(const Node& node) {
  auto cert = current_certificate(node);
  auto roots = crypto::parse_pem_bundle(read_file(node.state() / "root.crt"));
  return cert && roots && crypto::verify_chain(*cert, *roots, now_seconds(), X509_PURPOSE_SSL_CLIENT);
}

// True when state.json is there and loads.
inline bool state_loads(const Node& node) {
  auto state = agent::NodeFiles(node.state()).load_state();
  return state && state->has_value();
}

// The overlay's entry in the node's EdgeVPN config names <state>/current, node.crt and node.key,
// with x509 authentication.
inline bool config_points_at_current(const Node& node, const std::string& overlay) {
  const json config = json::parse(read_file(node.config()), nullptr, false);
  const json::json_pointer at("/Signal/Overlays/" + overlay);
  if (!config.is_object() || !config.contains(at) || !config[at].is_object()) return false;
  const json& entry = config[at];
  return entry.value("CertDirectory", "") == node.current().string() && entry.value("CertFile", "") == "node.crt" &&
         entry.value("KeyFile", "") == "node.key" && entry.value("AuthenticationMethod", "") == "x509";
}

// One deployment with groups "brief" and "lab", a token for each with many uses, and the
// renewal commands and checks.
struct World {
  Deployment deployment{"evpn-renew"};
  std::map<std::string, std::string> tokens;  // group -> token

  World() {
    deployment.add_group("brief", brief_overlay, "1m");
    deployment.add_group("lab", lab_overlay, "30d");
    for (const auto* group : {"brief", "lab"}) tokens[group] = deployment.token(group, {"--uses", "100"});
  }

  // A node enrolled into `group` with the real agent.
  Node enrolled(const std::string& username, const std::string& group) {
    Node n = deployment.node(username);
    const RunResult r = deployment.enroll(n, tokens.at(group));
    if (r.exit_code != 0)
      throw std::runtime_error("enrolling " + username + " exited with " + std::to_string(r.exit_code) + ": " + r.err);
    return n;
  }

  // `evpn-agent renew --state-dir <state> --json` with `extra` options and environment.
  RunResult renew(const fs::path& state, const Argv& extra = {}, const Environment& env = {}) const {
    Argv argv{EVPN_AGENT_BIN, "renew", "--state-dir", state, "--timeout", "10", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, std::chrono::seconds(120), env);
  }

  // A SASL EXTERNAL login with the files the node's EdgeVPN config points at for `overlay`.
  xmpp::LoginReport login(const Node& node, const std::string& overlay) {
    const json entry = json::parse(read_file(node.config()))["Signal"]["Overlays"][overlay];
    const fs::path cert_dir = entry.value("CertDirectory", "");
    xmpp::LoginOptions options;
    options.host = "127.0.0.1";
    options.port = deployment.xmpp().c2s_port();
    options.jid = node.username + "@" + domain;
    options.cert_file = cert_dir / entry.value("CertFile", "");
    options.key_file = cert_dir / entry.value("KeyFile", "");
    options.ca_file = deployment.ca_dir() / "ca.crt";
    options.deadline = std::chrono::seconds(10);
    return xmpp::verify_login(options);
  }
};

// One world per test binary: its set-up takes seconds.
inline World& world() {
  static World w;
  return w;
}

}  // namespace evpn::test::renewal
