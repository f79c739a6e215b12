#include "ca-service/xmpp/openfire.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/crypto/certificate.hpp"
#include "ca-service/log.hpp"

namespace evpn::ca::xmpp {
namespace {

using nlohmann::json;

std::string field(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

// The plugin's mapped errors are {"exception", "message", "resource"}.
bool is_error_entity(const json& doc) { return doc.is_object() && doc.contains("exception"); }

// Openfire's error entity as one short line; other bodies as an excerpt.
std::string describe(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  if (is_error_entity(doc))
    return field(doc, "exception") + ": " + field(doc, "message") + " (" + field(doc, "resource") + ")";
  if (doc.is_object() && doc.contains("message")) return field(doc, "message");
  return net::body_excerpt(body);
}

Result<void> expect(const OpenfireApi& api, const Result<OpenfireApi::Answer>& answer, const std::string& what,
                    std::initializer_list<int> accepted) {
  if (!answer) return answer.error();
  if (std::find(accepted.begin(), accepted.end(), answer->status) != accepted.end()) return {};
  return api.unexpected(what, *answer);
}

}  // namespace

std::string encode_segment(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

Result<OpenfireApi> OpenfireApi::from_config(const DirectoryConfig& config) {
  auto url = net::parse_url(config.url);
  if (!url) return with_context(url.error(), "directory.url");
  const bool basic = config.auth == DirectoryAuth::basic;
  auto secret = read_secret(config);
  if (!secret) return secret.error();

  auto client = make_directory_client(config, *url);
  if (!client) return client.error();
  std::string authorization = basic ? basic_authorization(config.username, *secret) : std::move(*secret);
  OpenfireApi api(std::move(*url), std::move(*client), std::move(authorization));
  api.basic_ = basic;
  return api;
}

OpenfireApi::OpenfireApi(net::Url base, net::HttpClient client, std::string authorization)
    : base_(std::move(base)), client_(std::move(client)), authorization_(std::move(authorization)) {}

Result<OpenfireApi::Answer> OpenfireApi::call(const std::string& method, const std::string& path,
                                              const std::string& body) const {
  // The plugin answers XML unless asked for JSON, and reads a body as XML without the type.
  net::HttpRequest request{method, net::join(base_, path), {{"Accept", "application/json"}}, body};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.headers.emplace_back("Authorization", authorization_);
  // Never log the headers or the body: they carry the secret and user passwords.
  spdlog::debug("openfire: {} {}", method, net::to_string(request.url));
  auto response = client_.send(request);
  Error error;
  if (!response) {
    const Error& e = response.error();
    error = e.code == Errc::unavailable
                ? fail(Errc::unavailable, "Openfire at " + where() + " is unreachable: " + e.detail)
                : fail(Errc::internal, "Openfire at " + where() + ": " + e.detail +
                                           (e.code == Errc::unauthorized ? "; check directory.ca_file" : ""));
  } else if (response->status == 401) {
    error = fail(Errc::internal,
                 basic_ ? "Openfire refused the admin credentials (HTTP 401): check directory.username (an Openfire "
                          "admin), its password in directory.secret_file / directory.secret_env, "
                          "plugin.restapi.httpAuth=basic and plugin.restapi.allowedIPs (REST API at " +
                              where() + ")"
                        : "Openfire refused the REST API secret (HTTP 401): check directory.secret_file / "
                          "plugin.restapi.secret / plugin.restapi.allowedIPs, and that plugin.restapi.httpAuth is "
                          "not \"basic\" (REST API at " +
                              where() + ")");
  } else if (response->status == 403) {
    error = fail(Errc::internal,
                 "the REST API plugin is disabled (HTTP 403): set plugin.restapi.enabled=true (REST "
                 "API at " +
                     where() + ")");
  } else if (response->status >= 300 && response->status < 400) {
    // The admin console's auth filter catches the plugin's URLs until the plugin has registered
    // its exclude (a starting Openfire answers so for seconds), and for good without wildcard
    // excludes. Both are answered as unavailable: a node retries and keeps its token.
    error = fail(Errc::unavailable,
                 "Openfire at " + where() + " redirected the REST API call to its admin login (HTTP " +
                     std::to_string(response->status) +
                     "): either it is still starting and has not loaded the REST API plugin yet, or "
                     "adminConsole.access.allow-wildcards-in-excludes is not true: set "
                     "adminConsole.access.allow-wildcards-in-excludes=true and restart Openfire");
  } else if (response->status == 404 && !is_error_entity(json::parse(response->body, nullptr, false))) {
    // The plugin's own 404s carry its error entity; a bare one means there is no plugin here.
    error = fail(Errc::internal, "Openfire at " + where() + " has no REST API at " + path +
                                     " (HTTP 404): install the REST API plugin and check that directory.url ends "
                                     "in /plugins/restapi/v1");
  } else if (response->status >= 500) {
    error = fail(Errc::unavailable, "Openfire at " + where() + " answered " + method + " " + path + " with HTTP " +
                                        std::to_string(response->status) + ": " + describe(response->body));
  } else {
    return Answer{response->status, std::move(response->body)};
  }
  spdlog::warn("{}", error.detail);
  return error;
}

Error OpenfireApi::unexpected(const std::string& what, const Answer& answer) const {
  Error error = fail(Errc::internal, "Openfire at " + where() + " answered " + what + " with HTTP " +
                                         std::to_string(answer.status) + ": " + describe(answer.body));
  spdlog::warn("{}", error.detail);
  return error;
}

OpenfireDirectory::OpenfireDirectory(OpenfireApi api) : api_(std::move(api)) {}

Result<void> OpenfireDirectory::ensure_group(const std::string& group) {
  const std::string path = "/groups/" + encode_segment(group);
  auto found = api_.call("GET", path);
  if (!found) return found.error();
  if (found->status == 404) {
    // Without explicit members and admins the plugin fails with a 500 (restAPI-plugin#176).
    json entity{{"name", group},
                {"description", "EdgeVPN overlay group"},
                {"shared", true},
                {"members", json::array()},
                {"admins", json::array()}};
    // 409: another enrollment created it in the meantime.
    return expect(api_, api_.call("POST", "/groups", entity.dump()), "creating group " + group, {201, 409});
  }
  if (found->status != 200) return api_.unexpected("GET " + path, *found);
  json current = json::parse(found->body, nullptr, false);
  if (!current.is_object() || !current.contains("shared"))
    return api_.unexpected("GET " + path + " with something other than a group", *found);
  if (current["shared"] == true) return {};

  // Someone unshared the group: members would no longer see each other. Since plugin 1.8.1 an
  // update replaces the member and admin lists, so the current ones are sent back unchanged.
  spdlog::warn("Openfire group {} was not shared with its members; sharing it again", group);
  auto kept = [&](const char* key, json fallback) {
    auto it = current.find(key);
    return it != current.end() && it->type() == fallback.type() ? *it : fallback;
  };
  json entity{{"name", group},
              {"description", kept("description", "EdgeVPN overlay group")},
              {"shared", true},
              {"members", kept("members", json::array())},
              {"admins", kept("admins", json::array())}};
  return expect(api_, api_.call("PUT", path, entity.dump()), "sharing group " + group, {200});
}

Result<bool> OpenfireDirectory::user_exists(const std::string& username) {
  const std::string path = "/users/" + encode_segment(username);
  auto found = api_.call("GET", path);
  if (!found) return found.error();
  if (found->status == 200) return true;
  if (found->status == 404) return false;
  return api_.unexpected("GET " + path, *found);
}

Result<void> OpenfireDirectory::create_user(const std::string& username) {
  // SASL EXTERNAL never uses the password, but the plugin refuses an empty one; a random one
  // keeps password logins closed.
  json entity{{"username", username}, {"password", crypto::to_hex(crypto::random_bytes(16))}};
  auto created = api_.call("POST", "/users", entity.dump());
  if (created && created->status == 409)
    return fail(Errc::conflict, "Openfire already has a user " + username);
  return expect(api_, created, "creating user " + username, {201});
}

Result<void> OpenfireDirectory::add_member(const std::string& username, const std::string& group) {
  const std::string path = "/users/" + encode_segment(username) + "/groups/" + encode_segment(group);
  return expect(api_, api_.call("POST", path), "adding " + username + " to group " + group, {201});
}

Result<void> OpenfireDirectory::disable_user(const std::string& username) {
  // A lockout also ends the user's live sessions. A user that does not exist cannot log in.
  return expect(api_, api_.call("POST", "/lockouts/" + encode_segment(username)), "locking out " + username,
                {201, 404});
}

Result<void> OpenfireDirectory::delete_user(const std::string& username) {
  return expect(api_, api_.call("DELETE", "/users/" + encode_segment(username)), "deleting user " + username,
                {200, 404});
}

Result<void> OpenfireDirectory::lift_lockout(const std::string& username) {
  // A no-op for a user that is not locked out.
  return expect(api_, api_.call("DELETE", "/lockouts/" + encode_segment(username)),
                "lifting the lockout of " + username, {200});
}

Result<void> OpenfireDirectory::ping() {
  // Readiness needs no credentials, so it cannot tell a wrong secret or a disabled plugin; the
  // authenticated read after it can (404 = property unset, which also proves access).
  if (auto ready = expect(api_, api_.call("GET", "/system/readiness"), "the readiness check", {200}); !ready)
    return ready;
  return expect(api_, api_.call("GET", "/system/properties/xmpp.domain"), "reading xmpp.domain", {200, 404});
}

Result<std::unique_ptr<Directory>> make_openfire_directory(const DirectoryConfig& config) {
  auto api = OpenfireApi::from_config(config);
  if (!api) return api.error();
  return std::unique_ptr<Directory>(std::make_unique<OpenfireDirectory>(std::move(*api)));
}

}  // namespace evpn::ca::xmpp
