#include "ca-service/config.hpp"

#include "common/fs/atomic_file.hpp"
#include "common/net/url.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace evpn::ca {

using nlohmann::ordered_json;

namespace {

// Copies `object[key]` into `out` when present, refusing a value of the wrong JSON type.
template <class T>
Result<void> read(const ordered_json& object, const char* section, const char* key, T& out) {
  auto it = object.find(key);
  if (it == object.end()) return {};
  const bool ok = [&] {
    if constexpr (std::is_same_v<T, std::string>) return it->is_string();
    else if constexpr (std::is_same_v<T, std::vector<std::string>>)
      return it->is_array() && std::all_of(it->begin(), it->end(), [](const auto& v) { return v.is_string(); });
    else return it->is_number_integer() && it->template get<long long>() >= 0 &&
                it->template get<long long>() <= std::numeric_limits<T>::max();
  }();
  if (!ok) return fail(Errc::invalid_request, std::string("config key ") + section + key + " has the wrong type");
  out = it->template get<T>();
  return {};
}

}  // namespace

Result<ListenAddress> parse_listen(const std::string& listen) {
  auto url = net::parse_url("https://" + listen);
  if (!url || listen.find(':') == std::string::npos)
    return fail(Errc::invalid_request, "--listen must be HOST:PORT, e.g. 127.0.0.1:8443, not '" + listen + "'");
  return ListenAddress{url->host, url->port};
}

Result<CaConfig> load_config(const std::filesystem::path& file) {
  auto text = fs::read_file(file);
  if (!text) return text.error();
  ordered_json doc = ordered_json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(Errc::invalid_request, file.string() + " is not a JSON object; fix it or run `evpn-ca init` again");
  CaConfig c;
  const ordered_json empty = ordered_json::object();
  const auto& xmpp = doc.contains("xmpp") ? doc["xmpp"] : empty;
  const auto& dir = doc.contains("directory") ? doc["directory"] : empty;
  const auto& limits = doc.contains("rate_limits") ? doc["rate_limits"] : empty;
  for (auto r : {read(doc, "", "listen", c.listen), read(doc, "", "hostnames", c.hostnames),
                 read(doc, "", "key_type", c.key_type), read(doc, "", "max_connections", c.max_connections),
                 read(doc, "", "max_connections_per_address", c.max_connections_per_address),
                 read(xmpp, "xmpp.", "domain", c.xmpp.domain), read(xmpp, "xmpp.", "host", c.xmpp.host),
                 read(xmpp, "xmpp.", "port", c.xmpp.port), read(dir, "directory.", "type", c.directory.type),
                 read(dir, "directory.", "url", c.directory.url), read(dir, "directory.", "auth", c.directory.auth),
                 read(dir, "directory.", "username", c.directory.username),
                 read(dir, "directory.", "secret_file", c.directory.secret_file),
                 read(dir, "directory.", "secret_env", c.directory.secret_env),
                 read(dir, "directory.", "ca_file", c.directory.ca_file),
                 read(dir, "directory.", "timeout_ms", c.directory.timeout_ms),
                 read(limits, "rate_limits.", "address_failures", c.rate_limits.address_failures),
                 read(limits, "rate_limits.", "address_window_seconds", c.rate_limits.address_window_seconds),
                 read(limits, "rate_limits.", "token_failures", c.rate_limits.token_failures),
                 read(limits, "rate_limits.", "token_window_seconds", c.rate_limits.token_window_seconds),
                 read(limits, "rate_limits.", "renewals_per_username", c.rate_limits.renewals_per_username),
                 read(limits, "rate_limits.", "renewal_window_seconds", c.rate_limits.renewal_window_seconds),
                 read(doc, "", "reserved_usernames", c.reserved_usernames)})
    if (!r) return with_context(r.error(), file.string());
  if (c.xmpp.domain.empty()) return fail(Errc::invalid_request, file.string() + ": xmpp.domain must be set");
  if (c.xmpp.host.empty()) c.xmpp.host = c.xmpp.domain;
  return c;
}

Result<void> save_config(const std::filesystem::path& file, const CaConfig& c) {
  ordered_json doc = {
      {"xmpp", {{"domain", c.xmpp.domain}, {"host", c.xmpp.host}, {"port", c.xmpp.port}}},
      {"directory",
       {{"type", c.directory.type},
        {"url", c.directory.url},
        {"auth", c.directory.auth},
        {"username", c.directory.username},
        {"secret_file", c.directory.secret_file},
        {"secret_env", c.directory.secret_env},
        {"ca_file", c.directory.ca_file},
        {"timeout_ms", c.directory.timeout_ms}}},
      {"listen", c.listen},
      {"hostnames", c.hostnames},
      {"key_type", c.key_type},
      {"max_connections", c.max_connections},
      {"max_connections_per_address", c.max_connections_per_address},
      {"rate_limits",
       {{"address_failures", c.rate_limits.address_failures},
        {"address_window_seconds", c.rate_limits.address_window_seconds},
        {"token_failures", c.rate_limits.token_failures},
        {"token_window_seconds", c.rate_limits.token_window_seconds},
        {"renewals_per_username", c.rate_limits.renewals_per_username},
        {"renewal_window_seconds", c.rate_limits.renewal_window_seconds}}},
      {"reserved_usernames", c.reserved_usernames},
  };
  using std::filesystem::perms;
  return fs::write_file_atomic(file, doc.dump(2) + "\n", perms::owner_read | perms::owner_write | perms::group_read);
}

}  // namespace evpn::ca
