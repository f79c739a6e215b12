#pragma once
// The agent's view of the CA service: roots pinned by fingerprint, then verified HTTPS.

#include "common/crypto/certificate.hpp"
#include "common/net/https_client.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"

#include <chrono>
#include <string>

namespace evpn::agent {

class CaClient {
 public:
  // Fetches GET /v1/roots (the only unverified exchange) and keeps the root whose SHA-256
  // fingerprint equals `fingerprint`; Errc::forbidden naming both fingerprints otherwise. Every
  // later request verifies the CA's certificate against that root and the URL's host name.
  static Result<CaClient> pin(const std::string& ca_url, const std::string& fingerprint,
                              std::chrono::milliseconds timeout);

  // A client for a CA whose root is already pinned (renewal), authenticating with the node's
  // current certificate and key (PEM) over mutual TLS.
  static Result<CaClient> with_root(const std::string& ca_url, crypto::Certificate root,
                                    const std::string& client_cert_pem, const std::string& client_key_pem,
                                    std::chrono::milliseconds timeout);

  // POST /v1/enroll. CA refusals keep their meaning: 400 -> invalid_request, 401 -> unauthorized,
  // 403 -> forbidden, 409 -> conflict, 429/503 -> unavailable; the detail is the CA's message.
  Result<protocol::EnrollmentResult> enroll(const protocol::EnrollRequest& request) const;

  // POST /v1/renew over mutual TLS; errors as for enroll().
  Result<protocol::EnrollmentResult> renew(const protocol::RenewRequest& request) const;

  // GET /v1/status over mutual TLS: how the CA sees the client certificate. Errors as for enroll().
  Result<protocol::CertificateStatus> status() const;

  // The CA's clock (its Date header on GET /v1/roots), for nodes whose own clock is off.
  Result<TimePoint> server_time() const;

  const crypto::Certificate& root() const noexcept { return root_; }

 private:
  CaClient(net::Url base, crypto::Certificate root, net::ClientTls tls, std::chrono::milliseconds timeout);
  Result<protocol::EnrollmentResult> post(const std::string& path, std::string body) const;
  net::Url base_;
  crypto::Certificate root_;
  net::HttpClient client_;
};

}  // namespace evpn::agent
