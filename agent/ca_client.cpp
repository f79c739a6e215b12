#include "agent/ca_client.hpp"

#include "agent/log.hpp"

#include <algorithm>
#include <cctype>

namespace evpn::agent {

namespace {

// Turns a non-success answer of the CA into an Error that keeps the CA's meaning and message.
Error refusal(const net::HttpResponse& response) {
  auto body = protocol::parse_error_body(response.body);
  std::string message = body ? body->message : "HTTP " + std::to_string(response.status);
  Errc code = Errc::internal;
  switch (response.status) {
    case 400: case 413: code = Errc::invalid_request; break;
    case 401: code = Errc::unauthorized; break;
    case 403: code = Errc::forbidden; break;
    case 404: code = Errc::not_found; break;
    case 409:
      code = body && body->error == to_string(Errc::account_exists) ? Errc::account_exists : Errc::conflict;
      break;
    case 429: case 502: case 503: case 504: code = Errc::unavailable; break;
    default: break;
  }
  if (response.retry_after) message += " (retry after " + std::to_string(response.retry_after->count()) + " s)";
  return fail(code, "the CA refused: " + message);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

net::ClientTls trusting(const crypto::Certificate& root) {
  net::ClientTls tls;
  tls.ca_pem = root.to_pem();
  return tls;
}

}  // namespace

CaClient::CaClient(net::Url base, crypto::Certificate root, net::ClientTls tls, std::chrono::milliseconds timeout)
    : base_(std::move(base)), root_(std::move(root)), client_(std::move(tls), timeout) {}

Result<CaClient> CaClient::with_root(const std::string& ca_url, crypto::Certificate root,
                                     const std::string& client_cert_pem, const std::string& client_key_pem,
                                     std::chrono::milliseconds timeout) {
  auto base = net::parse_url(ca_url);
  if (!base) return base.error();
  net::ClientTls tls = trusting(root);
  tls.client_cert_pem = client_cert_pem;
  tls.client_key_pem = client_key_pem;
  return CaClient(std::move(*base), std::move(root), std::move(tls), timeout);
}

Result<CaClient> CaClient::pin(const std::string& ca_url, const std::string& fingerprint,
                               std::chrono::milliseconds timeout) {
  auto base = net::parse_url(ca_url);
  if (!base) return base.error();
  if (base->scheme != "https") return fail(Errc::invalid_request, "the CA URL must use https: " + ca_url);
  const std::string pinned = lower(fingerprint);
  if (pinned.size() != 64 || pinned.find_first_not_of("0123456789abcdef") != std::string::npos)
    return fail(Errc::invalid_request, "the fingerprint must be 64 hex characters (evpn-ca fingerprint prints it)");

  // The only exchange without verification: what it returns is trusted only if it hashes to the
  // fingerprint the operator gave, so a man in the middle gains nothing.
  net::ClientTls unverified;
  unverified.verify = false;
  net::HttpRequest request;
  request.url = net::join(*base, "/v1/roots");
  auto response = net::HttpClient(unverified, timeout).send(request);
  if (!response) return response.error();
  if (response->status != 200) return refusal(*response);
  auto roots = crypto::parse_pem_bundle(response->body);
  if (!roots) return with_context(roots.error(), "GET /v1/roots");
  for (auto& root : *roots)
    if (root.fingerprint_sha256() == pinned) {
      log::debug("pinned CA root " + pinned);
      net::ClientTls tls = trusting(root);
      return CaClient(std::move(*base), std::move(root), std::move(tls), timeout);
    }
  return fail(Errc::forbidden, "the CA at " + ca_url + " offered root " + roots->front().fingerprint_sha256() +
                                   " but the pinned fingerprint is " + pinned +
                                   "; check the URL and fingerprint with the operator (evpn-ca fingerprint)");
}

Result<protocol::EnrollmentResult> CaClient::enroll(const protocol::EnrollRequest& request) const {
  return post("/v1/enroll", protocol::to_json(request));
}

Result<protocol::EnrollmentResult> CaClient::renew(const protocol::RenewRequest& request) const {
  return post("/v1/renew", protocol::to_json(request));
}

Result<protocol::EnrollmentResult> CaClient::post(const std::string& path, std::string body) const {
  net::HttpRequest post;
  post.method = "POST";
  post.url = net::join(base_, path);
  post.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  post.body = std::move(body);
  auto response = client_.send(post);
  if (!response) return response.error();
  if (response->status != 201) return refusal(*response);
  return protocol::parse_enrollment_result(response->body);
}

Result<protocol::CertificateStatus> CaClient::status() const {
  net::HttpRequest request;
  request.url = net::join(base_, "/v1/status");
  request.headers = {{"Accept", "application/json"}};
  auto response = client_.send(request);
  if (!response) return response.error();
  if (response->status != 200) return refusal(*response);
  return protocol::parse_certificate_status(response->body);
}

Result<TimePoint> CaClient::server_time() const {
  net::HttpRequest request;
  request.url = net::join(base_, "/v1/roots");
  auto response = client_.send(request);
  if (!response) return response.error();
  if (!response->date) return fail(Errc::unavailable, "the CA's answer carries no Date header");
  return *response->date;
}

}  // namespace evpn::agent
