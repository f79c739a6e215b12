// libFuzzer target: the JSON request parsers of the CA's API and the token parser, with a
// round-trip property: whatever parses serialises and parses back to the same values.
// Built and run by fuzz/run.sh.

#include "ca-service/enrollment/tokens.hpp"
#include "common/protocol/enrollment.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace protocol = evpn::protocol;
namespace enrollment = evpn::ca::enrollment;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto request = protocol::parse_enroll_request(body)) {
    if (auto token = enrollment::parse_token(request->token); token && token->id.size() != 16) __builtin_trap();
    auto again = protocol::parse_enroll_request(protocol::to_json(*request));
    if (!again || again->token != request->token || again->csr != request->csr) __builtin_trap();
  }
  if (auto request = protocol::parse_renew_request(body)) {
    auto again = protocol::parse_renew_request(protocol::to_json(*request));
    if (!again || again->csr != request->csr) __builtin_trap();
  }
  // The agent parses the CA's answers with the same reader.
  (void)protocol::parse_enrollment_result(body);
  (void)protocol::parse_error_body(body);
  (void)enrollment::parse_token(body);
  (void)enrollment::check_username(body);
  return 0;
}
