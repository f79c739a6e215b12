#include "common/net/url.hpp"

#include <boost/asio/ip/address_v6.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace evpn::net {
namespace {

Error bad_url(std::string_view text, std::string_view why) {
  return fail(Errc::invalid_request,
              "'" + std::string(text) + "' is not a usable URL: " + std::string(why) +
                  " (expected http[s]://host[:port][/path])");
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

Result<Url> parse_url(std::string_view text) {
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return std::iscntrl(static_cast<unsigned char>(c)) || c == ' '; }))
    return bad_url(text, "it contains spaces or control characters");
  if (text.find('#') != std::string_view::npos) return bad_url(text, "fragments (#...) are not allowed");

  Url url;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad_url(text, "the scheme is missing");
  for (char c : text.substr(0, sep)) url.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme != "http" && url.scheme != "https")
    return bad_url(text, "the scheme must be http or https");

  std::string_view rest = text.substr(sep + 3);
  auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return bad_url(text, "user names and passwords in URLs are not allowed");

  std::string_view port_text;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(text, "the IPv6 address lacks its closing ']'");
    url.host = std::string(authority.substr(1, close - 1));
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(url.host, ec);
    if (ec) return bad_url(text, "the IPv6 address is not valid");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return bad_url(text, "unexpected text after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return bad_url(text, "the port is empty");
  } else {
    auto colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad_url(text, "the port is empty");
    }
    if (!std::all_of(url.host.begin(), url.host.end(), is_host_char))
      return bad_url(text, "the host name contains characters that are not allowed");
  }
  if (url.host.empty()) return bad_url(text, "the host is empty");

  if (port_text.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
  } else {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
      return bad_url(text, "the port must be a number from 1 to 65535");
    url.port = static_cast<std::uint16_t>(value);
  }

  url.target = target.starts_with('/') ? std::string(target) : "/" + std::string(target);
  return url;
}

Url join(Url base, std::string_view path) {
  if (base.target.ends_with('/') && path.starts_with('/')) path.remove_prefix(1);
  if (!base.target.ends_with('/') && !path.starts_with('/')) base.target += '/';
  base.target += path;
  return base;
}

std::string to_string(const Url& url) {
  bool ipv6 = url.host.find(':') != std::string::npos;
  return url.scheme + "://" + (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port) +
         url.target;
}

}  // namespace evpn::net
