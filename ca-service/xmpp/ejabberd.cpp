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

Result<EjabberdDirectory> EjabberdDirectory::from_config(const DirectoryConfig& config, const std::string& domain) {
  if (auto valid = validate_directory(config, domain); !valid) return valid.error();
  auto url = net::parse_url(config.url);
  if (!url) return url.error();
  auto password = read_secret(config);
  if (!password) return password.error();
  auto client = make_directory_client(config, *url);
  if (!client) return client.error();
  return EjabberdDirectory(std::move(*url), std::move(*client), domain, config.username,
                           basic_authorization(config.username, *password));
}

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

Result<bool> EjabberdDirectory::group_exists(const std::string& group) {
  auto answer = call("srg_list", json{{"host", domain_}}.dump());
  if (!answer) return answer.error();
  const json groups = json::parse(*answer, nullptr, false);
  if (!groups.is_array())
    return fail(Errc::internal, "ejabberd answered srg_list with '" + net::body_excerpt(*answer) + "', not a list of groups");
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

Result<bool> EjabberdDirectory::permits(const std::string& command, const std::string& json_body) {
  auto response = post(command, json_body);
  if (!response) return response.error();
  if (response->status >= 200 && response->status < 300) return true;
  if (response->status == 403) return false;
  return fail(Errc::internal, "ejabberd answered " + command + " with HTTP " + std::to_string(response->status) +
                                  ": " + net::body_excerpt(response->body));
}

std::string EjabberdDirectory::where() const { return net::to_string(api_) + " as " + account_; }

Result<net::HttpResponse> EjabberdDirectory::post(const std::string& command, const std::string& json_body) {
  net::HttpRequest request{"POST",
                           net::join(api_, command),
                           {{"Content-Type", "application/json"}, {"Authorization", authorization_}},
                           json_body};
  const std::string where = net::to_string(api_);
  // Never log json_body or the headers: register carries a password, Authorization the account's.
  spdlog::debug("ejabberd: POST {}", net::to_string(request.url));
  auto response = client_.send(request);
  if (response) return response;
  Error error = response.error().code == Errc::unavailable
                    ? fail(Errc::unavailable, "ejabberd at " + where + " is unreachable: " + response.error().detail)
                    : fail(Errc::internal, "ejabberd at " + where + ": " + response.error().detail);
  spdlog::warn("{}", error.detail);
  return error;
}

Result<std::string> EjabberdDirectory::call(const std::string& command, const std::string& json_body) {
  const std::string where = net::to_string(api_);
  auto response = post(command, json_body);
  if (!response) return response.error();

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

ApiCheck check_ejabberd_api(EjabberdDirectory& ejabberd, std::ostream& out) {
  out << "ejabberd API at " << ejabberd.where() << "\n";
  ApiCheck check;
  if (auto status = ejabberd.ping(); !status) {
    print_check_line(out, "WRONG", "status: " + status.error().detail);
    return check;
  }
  check.answers = true;
  print_check_line(out, "OK", "status: the API answers the account with its password");
  bool ok = true;
  if (auto exists = ejabberd.group_exists(revoked_group); !exists) {
    ok = false;
    print_check_line(out, "WRONG", "srg_list: " + exists.error().detail);
  } else if (!*exists) {
    ok = false;
    print_check_line(out, "WRONG",
                     std::string("the shared roster group ") + revoked_group +
                         " does not exist: while the c2s access rule names it, ejabberd refuses every session. "
                         "evpn-ca creates it with the first enrollment; to create it now: curl -X POST <api>/srg_create "
                         "-d '{\"group\":\"" + revoked_group +
                         "\",\"host\":\"<domain>\",\"label\":\"revoked\",\"description\":\"\",\"display\":\"\"}'");
  } else {
    print_check_line(out, "OK", std::string("the shared roster group ") + revoked_group +
                                    " exists (the c2s access rule refuses its members)");
  }
  // A read-only command evpn-ca never calls: allowed, it means api_permissions grants more.
  constexpr const char* unused = "connected_users_number";
  if (auto allowed = ejabberd.permits(unused); !allowed) {
    ok = false;
    print_check_line(out, "WRONG", std::string("api_permissions: ") + unused + ": " + allowed.error().detail);
  } else if (*allowed) {
    ok = false;
    print_check_line(out, "WRONG",
                     std::string("api_permissions let the account call ") + unused +
                         ", a command evpn-ca does not use: list only the commands of deploy/ejabberd/ejabberd.yml.in "
                         "under `what` (a leaked evpn-ca password would otherwise open the whole API)");
  } else {
    print_check_line(out, "OK", std::string("api_permissions refuse the account a command evpn-ca does not use (") +
                                    unused + ")");
  }
  check.all_ok = ok;
  return check;
}

}  // namespace evpn::ca::xmpp
