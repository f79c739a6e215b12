#include "common/result.hpp"

#include <ostream>

namespace evpn {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::unauthorized: return "unauthorized";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::account_exists: return "account_exists";
    case Errc::unavailable: return "unavailable";
    case Errc::rate_limited: return "rate_limited";
    case Errc::io: return "io";
    case Errc::internal: return "internal";
  }
  return "internal";
}

std::ostream& operator<<(std::ostream& os, const Error& e) { return os << to_string(e.code) << ": " << e.detail; }

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(std::string(to_string(e.code)) + ": " + e.detail);
}

}  // namespace evpn
