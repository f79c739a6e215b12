#pragma once
// When a node certificate is due for renewal: once a third of its lifetime is left.

#include "common/crypto/certificate.hpp"
#include "common/protocol/lifetime.hpp"
#include "common/time.hpp"

namespace evpn::agent {

// The instant from which `cert` should be renewed: notAfter - lifetime / 3.
inline TimePoint renew_after(const crypto::Certificate& cert) {
  return protocol::renewal_due(cert.not_before() + protocol::issuance_backdate, cert.not_after());
}

}  // namespace evpn::agent
