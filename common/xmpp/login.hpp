#pragma once
// The XMPP login check: STARTTLS + SASL EXTERNAL with a client certificate, through libstrophe.
// The only code that sees strophe.h; evpn-agent proves a node's certificate with it, evpn-ca its
// revocation canary.

#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace evpn::xmpp {

struct LoginOptions {
  std::string host;  // where to connect (no SRV lookup)
  std::uint16_t port = 5222;
  std::string jid;   // expected bare JID, <username>@<domain>; the server certificate must name the domain
  // The client certificate and its key: PEM files, or PEM text that never touches a file system
  // (handed to libstrophe through anonymous memory files), e.g. for a key that exists only in memory.
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::string cert_pem;  // used when cert_file is empty
  std::string key_pem;   // used when key_file is empty; the caller cleanses it
  std::filesystem::path ca_file;  // trust anchors for the server's certificate
  // true: ca_file is the only trust anchor for the server (see verify_login). false: libstrophe also
  // trusts the system store; for processes whose other threads may read the environment meanwhile.
  bool ca_file_only = true;
  std::chrono::milliseconds deadline{15000};
  // Gets libstrophe's protocol log and the outcome, one line each, for a debug log; unset: nothing.
  // They carry no key and no password (the login has none to send).
  std::function<void(std::string_view)> trace;
};

// What happened, step by step, whether or not the login succeeded.
struct LoginReport {
  bool connected = false;      // TCP connection and stream open
  bool secured = false;        // STARTTLS done, server certificate verified
  bool authenticated = false;  // SASL EXTERNAL succeeded
  std::string mechanism;       // "EXTERNAL" when it was offered and used
  std::string bound_jid;       // full JID the server bound
  std::chrono::milliseconds elapsed{0};
  // Set when the login failed: Errc::unavailable (cannot connect, deadline),
  // Errc::unauthorized (TLS or SASL refused, bound JID not the expected one).
  std::optional<Error> error;
  bool ok() const { return !error; }
};

// Logs in once and disconnects, within options.deadline. The server's certificate must chain to
// options.ca_file and name the JID's domain. With options.ca_file_only it must chain to that file
// alone (never to the system trust store): the login then sets SSL_CERT_FILE and SSL_CERT_DIR
// (restored before it returns), so no other thread may read or change the environment meanwhile.
LoginReport verify_login(const LoginOptions& options);

}  // namespace evpn::xmpp
