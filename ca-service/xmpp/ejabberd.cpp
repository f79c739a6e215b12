#include "ca-service/xmpp/ejabberd.hpp"

#include "common/crypto/certificate.hpp"
#include "ca-service/log.hpp"

#include <nlohmann/json.hpp>


namespace evpn::ca::xmpp {
namespace {

using nlohmann::json;

// Keeps the server's answers in messages and logs to one readable line.
Result<void> done(const Result<std::string>& answer) {
  if (!answer) return answer.error();
  return {};
}

}  // namespace

EjabberdDirectory::EjabberdDirectory(net::Url api, net::HttpClient client, std::string domain, std::string account,
                                     std::string authorization)
    : api_(std::move(api)),
      client_(std::move(client)),
      domain_(std::move(domain)),
      account_(std::move(account)),
      authorization_(std::move(authorization)) {}

Result<void> EjabberdDirectory::ensure_group(const std::string& group) {
  // srg_create overwrites the group's options, so calling it again is harmless; "display" must
  // name the group itself or members would not see each other.
  json body{{"group", group},
            {"host", domain_},
            {"label", group},
            {"description", "EdgeVPN overlay group"},
            {"display", group}};
  if (auto r = done(call("srg_create", body.dump())); !r) return r;
  // Every node enrolls through here before it first logs in, and the c2s access rule fails every
  // session while the group it names is missing.
  return ensure_revoked_group();
}

Result<bool> EjabberdDirectory::user_exists(const std::string& username) {
  // check_account answers 0 for an account that exists and 1 for one that does not (ejabberd
  // 23.01's mod_http_api sends both with HTTP 200).
  auto answer = call("check_account", json{{"user", username}, {"host", domain_}}.dump());
  if (!answer) return answer.error();
  const json code = json::parse(*answer, nullptr, false);
  if (code == 0) return true;
  if (code == 1) return false;
  return fail(Errc::internal,
              "ejabberd answered check_account with '" + net::body_excerpt(*answer) + "', not 0 or 1");
}

Result<void> EjabberdDirectory::create_user(const std::string& username) {
  // SASL EXTERNAL never uses the password; a random one keeps password logins closed.
  json body{{"user", username}, {"host", domain_}, {"password", crypto::to_hex(crypto::random_bytes(16))}};
  return done(call("register", body.dump()));
}

Result<void> EjabberdDirectory::add_member(const std::string& username, const std::string& group) {
  json body{{"user", username}, {"host", domain_}, {"group", group}, {"grouphost", domain_}};
  return done(call("srg_user_add", body.dump()));
}

Result<void> EjabberdDirectory::disable_user(const std::string& username) {
  // ejabberd 23.01 accepts any certificate that chains to its cafile, whether the account exists
  // or not (unregister and ban_account change nothing), and never checks a CRL (fast_tls does not
  // turn on X509_V_FLAG_CRL_CHECK). What refuses the session is the c2s access rule, checked at
  // resource binding, which denies members of the revoked group: membership takes effect at once.
  if (auto r = ensure_revoked_group(); !r) return r;
  if (auto r = done(call("srg_user_add", revoked_membership(username))); !r) return r;
  json body{{"user", username}, {"host", domain_}};
  return done(call("kick_user", body.dump()));
}

Result<void> EjabberdDirectory::delete_user(const std::string& username) {
  json body{{"user", username}, {"host", domain_}};
  if (auto removed = call("unregister", body.dump()); !removed) return removed.error();
  return done(call("kick_user", body.dump()));
}

Result<void> EjabberdDirectory::lift_lockout(const std::string& username) {
  return done(call("srg_user_del", revoked_membership(username)));
}

Result<void> EjabberdDirectory::ensure_revoked_group() {
  // No "display": members see nobody through it and nobody sees them.
  json body{{"group", revoked_group},
            {"host", domain_},
            {"label", "revoked"},
            {"description", "nodes whose certificate evpn-ca revoked: the c2s access rule refuses them"},
            {"display", ""}};
  return done(call("srg_create", body.dump()));
}

std::string EjabberdDirectory::revoked_membership(const std::string& username) const {
  return json{{"user", username}, {"host", domain_}, {"group", revoked_group}, {"grouphost", domain_}}.dump();
}

Result<void> EjabberdDirectory::ping() { return done(call("status", "{}")); }

Result<std::string> EjabberdDirectory::call(const std::string& command, const std::string& json_body) {
  net::HttpRequest request{"POST",
                           net::join(api_, command),
                           {{"Content-Type", "application/json"}, {"Authorization", authorization_}},
                           json_body};
  const std::string where = net::to_string(api_);
  // Never log json_body or the headers: register carries a password, Authorization the account's.
  spdlog::debug("ejabberd: POST {}", net::to_string(request.url));
  auto response = client_.send(request);
  if (!response) {
    Error error = response.error().code == Errc::unavailable
                      ? fail(Errc::unavailable, "ejabberd at " + where + " is unreachable: " + response.error().detail)
                      : fail(Errc::internal, "ejabberd at " + where + ": " + response.error().detail);
    spdlog::warn("{}", error.detail);
    return error;
  }

  const int status = response->status;
  const std::string http = "(HTTP " + std::to_string(status) + "): " + net::body_excerpt(response->body);
  if (status >= 200 && status < 300) return std::move(response->body);
  if (status == 409) {
    spdlog::debug("ejabberd: {} answered a conflict {}", command, http);
    return fail(Errc::conflict, "ejabberd answered " + command + " with a conflict " + http);
  }
  Error error;
  if (status >= 500)
    error = fail(Errc::unavailable, "ejabberd at " + where + " answered " + command + " with a server error " + http);
  else if (status == 401)
    error = fail(Errc::internal, "ejabberd refused " + command + " " + http + ": it did not accept " + account_ +
                                     " and its password; check directory.username (the account's full JID), the "
                                     "password in directory.secret_file / directory.secret_env, and that the account "
                                     "exists (ejabberdctl register)");
  else if (status == 403)
    error = fail(Errc::internal, "ejabberd refused " + command + " " + http + ": " + account_ +
                                     " may not call it; grant it in api_permissions (who: user: " + account_ +
                                     ", what: every command deploy/ejabberd/ejabberd.yml.in lists)");
  else if (status == 404)
    error = fail(Errc::internal, "ejabberd refused " + command + " " + http + ": no such command at " + where +
                                     "; check that directory.url ends in /api, api_permissions, and that "
                                     "mod_http_api and mod_admin_extra are enabled");
  else
    error = fail(Errc::internal, "ejabberd rejected " + command + " " + http);
  spdlog::warn("{}", error.detail);
  return error;
}

}  // namespace evpn::ca::xmpp
