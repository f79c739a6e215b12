#pragma once
// Project-wide error and result types: functions that can fail for reasons outside the
// programmer's control return Result<T>; exceptions are reserved for bugs and start-up.

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <utility>

namespace evpn {

// What went wrong, in terms a caller can act on. The HTTP layer maps these to statuses.
enum class Errc {
  invalid_request,  // the input is malformed or violates policy; retrying will not help
  unauthorized,     // credentials (token, client certificate) unknown, expired or used up
  forbidden,        // authenticated, but this name or action is not allowed
  not_found,
  conflict,         // the name is held by someone else
  account_exists,   // the XMPP account exists but evpn-ca did not create it: an operator must adopt it
  unavailable,      // a dependency (directory, XMPP server, CA) is down: retry later
  rate_limited,     // too many failed attempts from this client or with this token: retry later
  io,               // local file-system failure
  internal,         // a bug or an unexpected library failure
};

const char* to_string(Errc code) noexcept;

// An error code plus a human-readable detail that says what was wrong and how to fix it.
struct Error {
  Errc code = Errc::internal;
  std::string detail;
};

// "<code>: <detail>" (lets test frameworks print a failed Result).
std::ostream& operator<<(std::ostream& os, const Error& e);

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

// boost::system::result<T, Error> that the compiler will not let a caller drop: an ignored
// Result is an ignored failure (a write that did not happen, a check that refused), so every call
// must look at it or say why not with a cast to void. Only the [[nodiscard]] is added; the API
// (has_value, operator bool, error, value, *, ->) and the conversions from T, from Error and, for
// Result<void>, from {} are boost's.
template <class T>
class [[nodiscard]] Result : public boost::system::result<T, Error> {
 public:
  using boost::system::result<T, Error>::result;
};

// Shorthand for returning an error: `return fail(Errc::invalid_request, "...")`.
inline Error fail(Errc code, std::string detail) { return Error{code, std::move(detail)}; }

// Prefixes the detail of an error with context, keeping its code.
inline Error with_context(Error e, const std::string& context) {
  e.detail = context + ": " + e.detail;
  return e;
}

}  // namespace evpn
