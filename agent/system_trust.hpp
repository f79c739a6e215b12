#pragma once
// The node's system trust store. EdgeVPN verifies the XMPP server's certificate only against it
// (it has no CA option of its own), so a server certificate from our CA needs our root there.

#include <filesystem>
#include <string_view>

#include "common/result.hpp"

namespace evpn::agent {

// Where Debian's update-ca-certificates picks up local CA certificates.
inline const std::filesystem::path default_system_trust_dir = "/usr/local/share/ca-certificates";

// Writes the root as <dir>/evpn-enroll-<first 16 hex chars of its SHA-256 fingerprint>.crt (mode
// 0644, atomically) and, only when `dir` is the default one, runs update-ca-certificates with its
// output on stderr. Other directories get the file alone (their distribution's tool is the
// operator's to run). Returns the file written; Errc::io when the directory or the tool fails.
Result<std::filesystem::path> install_system_root(std::string_view root_pem,
                                                  const std::filesystem::path& dir = default_system_trust_dir);

}  // namespace evpn::agent
