#pragma once
// Reads the Prometheus text format back, strictly, for tests: every sample line must follow a
// "# TYPE" line of its family, names and labels must be well-formed, values numbers.

#include "common/net/https_client.hpp"
#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <string>

namespace evpn::test {

struct Exposition {
  std::map<std::string, std::string> types;  // family name -> counter, gauge, histogram
  std::map<std::string, double> samples;     // series exactly as written (name{labels}) -> value

  // The value of `series` (e.g. `evpn_ca_enrollments_total{result="ok"}`); fails the test when absent.
  double at(const std::string& series) const {
    auto it = samples.find(series);
    INFO("series " << series);
    REQUIRE(it != samples.end());
    return it->second;
  }
};

inline Exposition parse_exposition(const std::string& text) {
  static const std::regex type_line(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex help_line(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex sample_line(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? ([^ ]+))");
  Exposition out;
  std::string family;
  std::istringstream lines(text);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    INFO("line: " << line);
    if (std::regex_match(line, m, help_line)) continue;
    if (std::regex_match(line, m, type_line)) {
      family = m[1];
      REQUIRE(out.types.emplace(family, m[2]).second);
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample_line));
    const std::string name = m[1];
    const bool histogram_part = out.types[family] == "histogram" &&
                                (name == family + "_bucket" || name == family + "_sum" || name == family + "_count");
    REQUIRE((name == family || histogram_part));
    const std::string value = m[3];
    char* end = nullptr;
    const double v = value == "+Inf" ? HUGE_VAL : std::strtod(value.c_str(), &end);
    REQUIRE((value == "+Inf" || (end && *end == '\0')));
    REQUIRE(out.samples.emplace(name + std::string(m[2]), v).second);
  }
  return out;
}

// GET `url` (a plain-HTTP /metrics), parsed.
inline Exposition scrape(const std::string& url) {
  net::HttpRequest request;
  request.url = ok(net::parse_url(url));
  const auto response = ok(net::HttpClient(net::ClientTls{}).send(request));
  REQUIRE(response.status == 200);
  return parse_exposition(response.body);
}

}  // namespace evpn::test
