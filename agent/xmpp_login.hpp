#pragma once
// The XMPP login check: STARTTLS + SASL EXTERNAL with a client certificate, through libstrophe.
// The only code that sees strophe.h.

#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace evpn::agent {

struct LoginOptions {
  std::string host;  // where to connect (no SRV lookup)
  std::uint16_t port = 5222;
  std::string jid;   // expected bare JID, <username>@<domain>; the server certificate must name the domain
  std::filesystem::path cert_file;  // PEM client certificate
  std::filesystem::path key_file;   // PEM private key
  std::filesystem::path ca_file;    // the only trust anchors for the server's certificate
  std::chrono::milliseconds deadline{15000};
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
// options.ca_file alone (never to the system trust store) and name the JID's domain. While it
// runs it sets SSL_CERT_FILE and SSL_CERT_DIR (restored before it returns), so no other thread
// may read or change the environment meanwhile.
LoginReport verify_login(const LoginOptions& options);

}  // namespace evpn::agent
