#pragma once
// Wire format of the CA service's JSON API, shared by evpn-ca and evpn-agent.
// JSON keys equal the member names.

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evpn::protocol {

struct EnrollRequest {
  std::string token;
  std::string csr;  // PEM
};

struct RenewRequest {
  std::string csr;  // PEM, with a new key and the current certificate's CN
};

struct NodeInfo {
  std::string username;
  std::string jid;
  std::string group;
  std::string overlay;
};

struct XmppEndpoint {
  std::string host;
  std::uint16_t port = 5222;
  std::string domain;
  std::string transport = "starttls";
};

struct EnrollmentResult {
  std::string certificate;         // PEM
  std::vector<std::string> chain;  // PEM, intermediates between certificate and root (may be empty)
  std::string root;                // PEM
  std::string serial;              // hex
  std::string not_before;          // RFC 3339
  std::string not_after;
  std::string renew_after;
  std::string server_time;
  NodeInfo node;
  XmppEndpoint xmpp;
};

// How the CA sees a node's certificate (GET /v1/status).
enum class CertificateState { current, superseded, revoked, expired };

// "current", "superseded", "revoked", "expired".
const char* to_string(CertificateState state) noexcept;

struct CertificateStatus {
  std::string serial;  // hex
  CertificateState status = CertificateState::current;
};

// The message of the 401 for a token that is unknown, expired or used up: one message for every way
// a token can be refused, so that a caller learns nothing about which tokens exist.
inline constexpr const char* token_refused =
    "the enrollment token is unknown, expired or used up; ask the operator for a new one";

struct ErrorBody {
  std::string error;
  std::string message;
};

// Parsers never throw: Errc::invalid_request with a message naming the bad field.
Result<EnrollRequest> parse_enroll_request(std::string_view body);
std::string to_json(const EnrollRequest& r);

Result<RenewRequest> parse_renew_request(std::string_view body);
std::string to_json(const RenewRequest& r);

Result<EnrollmentResult> parse_enrollment_result(std::string_view body);
std::string to_json(const EnrollmentResult& r);

Result<CertificateStatus> parse_certificate_status(std::string_view body);
std::string to_json(const CertificateStatus& s);

Result<ErrorBody> parse_error_body(std::string_view body);
std::string to_json(const ErrorBody& e);

}  // namespace evpn::protocol
