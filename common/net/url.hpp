#pragma once
// URLs of the form scheme://host[:port][/path]; only http and https.

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace evpn::net {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // name or IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string target;  // path and query, at least "/"
};

// Errc::invalid_request with a message naming the URL when it is not of the form above.
Result<Url> parse_url(std::string_view text);

// `base` with `path` appended ("https://h:1/api" + "/v1/roots" -> target "/api/v1/roots").
Url join(Url base, std::string_view path);

// "scheme://host:port/target", with IPv6 hosts in brackets (for messages and logs).
std::string to_string(const Url& url);

}  // namespace evpn::net
