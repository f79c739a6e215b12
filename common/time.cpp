#include "common/time.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace evpn {

TimePoint now_seconds() { return std::chrono::time_point_cast<std::chrono::seconds>(Clock::now()); }

std::string to_rfc3339(TimePoint t) {
  std::time_t tt = static_cast<std::time_t>(to_unix(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<TimePoint> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  char tail = 0;
  std::string s(text);
  const auto refused = [&] {
    return fail(Errc::invalid_request, "'" + s + "' is not an RFC 3339 UTC time like 2026-01-31T12:00:00Z");
  };
  if (s.size() != 20 || std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon,
                                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tail) != 7 ||
      tail != 'Z')
    return refused();
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const TimePoint t = from_unix(static_cast<long long>(timegm(&tm)));
  // sscanf skips blanks and accepts signs, and timegm rolls "02-30" over into March: only the
  // canonical spelling of the time it denotes is accepted.
  if (to_rfc3339(t) != s) return refused();
  return t;
}

std::string to_http_date(TimePoint t) {
  std::time_t tt = static_cast<std::time_t>(to_unix(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Result<TimePoint> parse_http_date(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return fail(Errc::invalid_request, "'" + s + "' is not an HTTP date");
  return from_unix(static_cast<long long>(timegm(&tm)));
}

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  long long n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  const bool one_unit = ec == std::errc{} && end == text.data() + text.size() - 1;
  long long unit = 0;
  if (one_unit) {
    switch (*end) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: break;
    }
  }
  if (unit == 0 || n <= 0 || n > 100LL * 365 * 86400 / unit)
    return fail(Errc::invalid_request, "'" + std::string(text) +
                                           "' is not a duration: use a positive number and one unit "
                                           "of s, m, h or d, e.g. 90s, 15m, 24h, 30d");
  return std::chrono::seconds(n * unit);
}

}  // namespace evpn
