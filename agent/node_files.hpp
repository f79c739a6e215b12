#pragma once
// The agent's state directory. Layout:
//   state.json                  what renew/check need (CA URL, fingerprint, username, ...)
//   .staging-XXXXXX/            a pair issued but not yet in use (see NodeFiles::pending)
//   root.crt                    the pinned root
//   certs-<serial>/node.key     0600
//   certs-<serial>/node.crt     certificate (then chain)
//   current -> certs-<serial>   symlink, swapped atomically: key and certificate always match
// EdgeVPN's CertDirectory is <state>/current.

#include "common/result.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace evpn::agent {

struct NodeState {
  std::string ca_url;
  std::string fingerprint;
  std::string username;
  std::string jid;
  std::string group;
  std::string overlay;
  std::string xmpp_host;
  std::uint16_t xmpp_port = 5222;
  std::string xmpp_domain;
  std::string evio_config;
  std::string key_type;
  std::string serial;
  std::string not_after;
  std::string renew_after;
};

// Key, certificate and root written to a private staging directory, not yet in use.
struct StagedPair {
  std::filesystem::path dir;
  std::filesystem::path key_file;
  std::filesystem::path cert_file;
  std::filesystem::path root_file;
  std::string serial;
};

class NodeFiles {
 public:
  explicit NodeFiles(std::filesystem::path state_dir);

  std::filesystem::path current_dir() const { return dir_ / "current"; }
  std::filesystem::path key_file() const { return current_dir() / "node.key"; }
  std::filesystem::path cert_file() const { return current_dir() / "node.crt"; }
  std::filesystem::path root_file() const { return dir_ / "root.crt"; }
  std::filesystem::path state_file() const { return dir_ / "state.json"; }

  // Creates the state directory (0700) if needed and writes the pair and root into a new
  // staging directory inside it. Earlier staging directories are left alone: see pending().
  Result<StagedPair> stage(const std::string& key_pem, const std::string& cert_pem,
                           const std::string& root_pem, const std::string& serial);

  // Puts a staged pair in use: renames it to certs-<serial>, writes root.crt and state.json,
  // swaps `current` atomically, and removes pairs older than the previous one and every staged
  // pair left by interrupted runs (the CA issued those before this one). Also finishes a
  // commit that was interrupted: `staged` may already be certs-<serial>, its root already moved.
  Result<void> commit(const StagedPair& staged, const NodeState& state);

  // Pairs that a run issued but did not put in use (killed, or its login failed): every staging
  // directory holding a key and a certificate, and the certs-* directory of the serial that
  // state.json names when `current` does not name it (a commit killed half-way). Never the
  // previous pair. Their serial is left empty: the caller reads it from the certificate.
  std::vector<StagedPair> pending() const;

  // Removes a staged pair that will not be used.
  void discard(const StagedPair& staged) const noexcept;

  // The state, or nullopt when the node has not enrolled.
  Result<std::optional<NodeState>> load_state() const;

 private:
  std::filesystem::path dir_;
};

}  // namespace evpn::agent
