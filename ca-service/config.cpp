#include "ca-service/config.hpp"

#include "common/crypto/key.hpp"
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

std::string_view to_string(DirectoryType type) {
  switch (type) {
    case DirectoryType::ejabberd: return "ejabberd";
    case DirectoryType::openfire: return "openfire";
    case DirectoryType::none: return "none";
  }
  return "?";
}

std::optional<DirectoryType> parse_directory_type(std::string_view text) {
  for (auto type : {DirectoryType::ejabberd, DirectoryType::openfire, DirectoryType::none})
    if (text == to_string(type)) return type;
  return std::nullopt;
}

std::string_view to_string(DirectoryAuth auth) { return auth == DirectoryAuth::basic ? "basic" : "secret"; }

std::optional<DirectoryAuth> parse_directory_auth(std::string_view text) {
  for (auto auth : {DirectoryAuth::secret, DirectoryAuth::basic})
    if (text == to_string(auth)) return auth;
  return std::nullopt;
}

Result<ListenAddress> parse_listen(const std::string& listen, const std::string& option) {
  auto url = net::parse_url("https://" + listen);
  if (!url || listen.find(':') == std::string::npos)
    return fail(Errc::invalid_request, option + " must be HOST:PORT, e.g. 127.0.0.1:8443, not '" + listen + "'");
  return ListenAddress{url->host, url->port};
}

bool is_account_jid(std::string_view jid) {
  const auto at = jid.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < jid.size() &&
         std::none_of(jid.begin(), jid.end(), [](unsigned char c) { return c == ':' || c <= ' ' || c == 0x7f; });
}

Result<void> validate_directory(const DirectoryConfig& d, const std::string& xmpp_domain) {
  if (d.type == DirectoryType::none) return {};
  const std::string type(to_string(d.type));
  if (auto url = net::parse_url(d.url); !url) return with_context(url.error(), "directory.url (--directory-url)");
  if (d.timeout_ms <= 0) return fail(Errc::invalid_request, "directory.timeout_ms must be a positive number");
  if (d.type == DirectoryType::ejabberd && !is_account_jid(d.username))
    return fail(Errc::invalid_request,
                "directory.username must be the full JID of the ejabberd account evpn-ca calls the API as "
                "(--directory-user; e.g. evpn-ca@" + xmpp_domain + ", created with ejabberdctl register), not '" +
                    d.username + "'");
  if (d.type == DirectoryType::openfire && d.auth == DirectoryAuth::basic && d.username.empty())
    return fail(Errc::invalid_request,
                "directory.auth basic needs directory.username (--directory-user), an Openfire admin");
  if (!d.secret_file.empty() && !d.secret_env.empty())
    return fail(Errc::invalid_request, "set only one of directory.secret_file and directory.secret_env");
  if (d.secret_file.empty() && d.secret_env.empty())
    return fail(Errc::invalid_request,
                "the " + type + " directory needs " +
                    (d.type == DirectoryType::ejabberd ? "the password of --directory-user (directory.username)"
                                                       : "the REST API secret (for auth basic: the admin password)") +
                    ": set directory.secret_file or directory.secret_env (--directory-secret-file or "
                    "--directory-secret-env)");
  return {};
}

Result<void> validate_config(const CaConfig& c) {
  if (c.xmpp.domain.empty()) return fail(Errc::invalid_request, "xmpp.domain (--xmpp-domain) must be set");
  if (c.xmpp.port == 0) return fail(Errc::invalid_request, "xmpp.port (--xmpp-port) must be 1-65535");
  if (auto listen = parse_listen(c.listen); !listen) return listen.error();
  if (!c.metrics_listen.empty())
    if (auto metrics = parse_listen(c.metrics_listen, "metrics_listen (--metrics-listen; \"\" for none)"); !metrics)
      return metrics.error();
  if (auto key_type = crypto::parse_key_type(c.key_type); !key_type)
    return with_context(key_type.error(), "key_type (--key-type)");
  if (c.max_connections < 1 || c.max_connections_per_address < 1)
    return fail(Errc::invalid_request, "max_connections and max_connections_per_address must be at least 1");
  return validate_directory(c.directory, c.xmpp.domain);
}

Result<CaConfig> load_config(const std::filesystem::path& file) {
  auto text = fs::read_file(file);
  if (!text) return text.error();
  ordered_json doc = ordered_json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(Errc::invalid_request, file.string() + " is not a JSON object; fix it or run `evpn-ca init` again");
  CaConfig c;
  std::string type(to_string(c.directory.type)), auth(to_string(c.directory.auth));
  const ordered_json empty = ordered_json::object();
  const auto& xmpp = doc.contains("xmpp") ? doc["xmpp"] : empty;
  const auto& dir = doc.contains("directory") ? doc["directory"] : empty;
  const auto& limits = doc.contains("rate_limits") ? doc["rate_limits"] : empty;
  for (auto r : {read(doc, "", "listen", c.listen), read(doc, "", "metrics_listen", c.metrics_listen),
                 read(doc, "", "hostnames", c.hostnames),
                 read(doc, "", "key_type", c.key_type), read(doc, "", "max_connections", c.max_connections),
                 read(doc, "", "max_connections_per_address", c.max_connections_per_address),
                 read(xmpp, "xmpp.", "domain", c.xmpp.domain), read(xmpp, "xmpp.", "host", c.xmpp.host),
                 read(xmpp, "xmpp.", "port", c.xmpp.port), read(dir, "directory.", "type", type),
                 read(dir, "directory.", "url", c.directory.url), read(dir, "directory.", "auth", auth),
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
                 read(doc, "", "reserved_usernames", c.reserved_usernames), read(doc, "", "store", c.store),
                 read(doc, "", "store_password_file", c.store_password_file)})
    if (!r) return with_context(r.error(), file.string());
  const auto parsed_type = parse_directory_type(type);
  if (!parsed_type)
    return fail(Errc::invalid_request,
                file.string() + ": directory.type must be ejabberd, openfire or none, not '" + type + "'");
  const auto parsed_auth = parse_directory_auth(auth);
  if (!parsed_auth)
    return fail(Errc::invalid_request, file.string() + ": directory.auth must be secret or basic, not '" + auth + "'");
  c.directory.type = *parsed_type;
  c.directory.auth = *parsed_auth;
  if (c.xmpp.host.empty()) c.xmpp.host = c.xmpp.domain;
  if (auto valid = validate_config(c); !valid) return with_context(valid.error(), file.string());
  return c;
}

Result<void> save_config(const std::filesystem::path& file, const CaConfig& c) {
  ordered_json doc = {
      {"xmpp", {{"domain", c.xmpp.domain}, {"host", c.xmpp.host}, {"port", c.xmpp.port}}},
      {"directory",
       {{"type", to_string(c.directory.type)},
        {"url", c.directory.url},
        {"auth", to_string(c.directory.auth)},
        {"username", c.directory.username},
        {"secret_file", c.directory.secret_file},
        {"secret_env", c.directory.secret_env},
        {"ca_file", c.directory.ca_file},
        {"timeout_ms", c.directory.timeout_ms}}},
      {"listen", c.listen},
      {"metrics_listen", c.metrics_listen},
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
      {"store", c.store},
      {"store_password_file", c.store_password_file},
  };
  using std::filesystem::perms;
  return fs::write_file_atomic(file, doc.dump(2) + "\n", perms::owner_read | perms::owner_write | perms::group_read);
}

}  // namespace evpn::ca
