#pragma once
// When a node certificate is due for renewal: once a third of its lifetime is left.

#include "common/crypto/certificate.hpp"
#include "common/time.hpp"

namespace evpn::agent {

// The CA backdates notBefore by five minutes; the lifetime counts from the real issuance time.
inline constexpr std::chrono::seconds issuance_backdate{5 * 60};

// The instant from which `cert` should be renewed: notAfter - lifetime / 3.
inline TimePoint renew_after(const crypto::Certificate& cert) {
  const auto issued = cert.not_before() + issuance_backdate;
  return cert.not_after() - (cert.not_after() - issued) / 3;
}

}  // namespace evpn::agent
