#include "common/time.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace evpn;
using namespace std::chrono_literals;

TEST_CASE("to_rfc3339 writes the Unix epoch as 1970-01-01T00:00:00Z") {
  CHECK(to_rfc3339(from_unix(0)) == "1970-01-01T00:00:00Z");
  CHECK(to_rfc3339(from_unix(1767225600)) == "2026-01-01T00:00:00Z");
}

TEST_CASE("parse_rfc3339 reads back what to_rfc3339 wrote") {
  for (long long s : {0LL, 951782400LL /* leap day 2000 */, 1767225600LL, 1767225600LL + 86399, 4102444800LL}) {
    const std::string text = to_rfc3339(from_unix(s));
    auto parsed = parse_rfc3339(text);
    INFO(text);
    REQUIRE(parsed.has_value());
    CHECK(to_unix(*parsed) == s);
  }
  auto known = parse_rfc3339("2026-11-25T20:46:05Z");
  REQUIRE(known.has_value());
  CHECK(to_unix(*known) == 1795639565);
}

TEST_CASE("parse_rfc3339 refuses offsets other than Z and text that is not a time") {
  for (const char* text : {"1970-01-01T00:00:00+01:00", "1970-01-01T00:00:00+00:00", "2026-01-01T00:00:00.5Z",
                           "2026-01-01 00:00:00Z", "2026-01-01", "", "garbage", "2026-01-01T00:00:00ZZ",
                           "2026-01-01T00:00:00Y"}) {
    auto parsed = parse_rfc3339(text);
    INFO('"' << text << '"');
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().code == Errc::invalid_request);
    CHECK(parsed.error().detail.find("RFC 3339") != std::string::npos);
  }
}

TEST_CASE("parse_rfc3339 refuses dates and times that do not exist instead of rolling them over") {
  for (const char* text : {"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                           "2026-01-01T00:60:00Z", "2026-01-01T0:00:00ZZ", "2026-01-01T +1:00:00Z"}) {
    auto parsed = parse_rfc3339(text);
    INFO('"' << text << '"');
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().code == Errc::invalid_request);
  }
}

TEST_CASE("parse_duration reads one number with one unit of s, m, h or d") {
  CHECK(parse_duration("90s").value() == 90s);
  CHECK(parse_duration("15m").value() == 15min);
  CHECK(parse_duration("24h").value() == 24h);
  CHECK(parse_duration("30d").value() == std::chrono::seconds(30 * 86400));
}

TEST_CASE("parse_duration refuses empty, unitless, signed, zero, fractional, unknown and compound durations") {
  for (const char* text : {"", "10", "d", "-1h", "0m", "1.5h", "10w", "1h30m", " 5m", "5m ", "+5m"}) {
    auto parsed = parse_duration(text);
    INFO('"' << text << '"');
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().code == Errc::invalid_request);
    CHECK(parsed.error().detail.find("30d") != std::string::npos);
  }
}

TEST_CASE("parse_duration refuses durations longer than a century") {
  CHECK(parse_duration("36500d").has_value());
  auto too_long = parse_duration("36501d");
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().code == Errc::invalid_request);
  CHECK_FALSE(parse_duration("99999999999999999999s").has_value());
}
