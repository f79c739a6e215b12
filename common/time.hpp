#pragma once
// Time helpers: one clock type for the whole project, RFC 3339 text, and durations such as "30d".

#include "common/result.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace evpn {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::seconds>;

// Now, truncated to whole seconds (certificates and the store have second precision).
TimePoint now_seconds();

// "2026-11-25T20:46:05Z" (UTC, whole seconds).
std::string to_rfc3339(TimePoint t);

// Parses the UTC form that to_rfc3339 writes ("...Z"); other offsets are refused.
Result<TimePoint> parse_rfc3339(std::string_view text);

// The HTTP Date header form: "Wed, 25 Nov 2026 21:12:32 GMT".
std::string to_http_date(TimePoint t);
Result<TimePoint> parse_http_date(std::string_view text);

// Parses "90s", "15m", "24h", "30d" (one number and one unit) into seconds.
Result<std::chrono::seconds> parse_duration(std::string_view text);

// Seconds since the Unix epoch.
inline long long to_unix(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_unix(long long s) { return TimePoint(std::chrono::seconds(s)); }

}  // namespace evpn
