#pragma once
// The rules of a node certificate's lifetime that the CA and the agent both apply.

#include "common/time.hpp"

#include <chrono>

namespace evpn::protocol {

// The CA backdates notBefore by this much, for nodes whose clocks run slow; a certificate's
// lifetime counts from its real issuance time, notBefore + issuance_backdate.
inline constexpr std::chrono::seconds issuance_backdate{5 * 60};

// When a certificate issued at `issued` and valid until `not_after` is due for renewal: once a
// third of its lifetime is left.
inline TimePoint renewal_due(TimePoint issued, TimePoint not_after) { return not_after - (not_after - issued) / 3; }

}  // namespace evpn::protocol
