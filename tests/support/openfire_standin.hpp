#pragma once
// A stand-in for Openfire's REST API plugin (/plugins/restapi/v1) on 127.0.0.1 over plain HTTP,
// because Openfire cannot be installed from a package registry for CI. It follows the plugin's documented behaviour
// (checked against Openfire 5.1.1 and the REST API plugin 1.12.0, see deploy/openfire/README.md),
// quirks included:
//  - 201 with an empty body on creates; 409 on a duplicate user or group;
//  - 500 (servlet body) for a group created without "members"/"admins", also when it is a duplicate;
//  - 500 for adding a member to a missing group; 201 for a membership that exists;
//  - 404 error entities {"exception","message","resource"} (UserNotFoundException, ...);
//  - 401 for a wrong or missing secret (or basic credentials); 403 while plugin.restapi.enabled
//    is false; a 302 to the admin login without adminConsole.access.allow-wildcards-in-excludes
//    (a real Openfire also answers so while it starts, until the plugin has loaded);
//  - XML unless Accept asks for JSON; bodies only as JSON (other types: 415; the real plugin
//    also reads XML, which our backend never sends); unknown JSON keys: 400;
//  - GET /groups/{g} reports "shared", the list GET /groups always shared:false; a PUT replaces
//    the member and admin lists; usernames are lower-cased on create but looked up as given;
//  - lockouts, system properties (GET 404 when unset, PUT 404 when unset, POST creates),
//    readiness and liveness without authentication.
// The plugin's own settings are system properties here too (plugin.restapi.enabled, .secret,
// .httpAuth), so tests flip them the way an operator would.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace evpn::test {

class OpenfireStandin {
 public:
  struct Options {
    std::uint16_t port = 0;  // 0: a free port
    std::string secret = "standin-secret";
    std::string domain = "evpn.test";  // members are reported as bare JIDs <user>@<domain>
    bool disabled = false;             // plugin.restapi.enabled=false
    std::string http_auth = "secret";  // plugin.restapi.httpAuth: "secret" or "basic"
    std::string admin_user = "admin";  // the Openfire admin for basic authentication
    std::string admin_password = "admin-password";
    bool print_requests = false;  // one line per request on stdout (the executable's log)
  };

  struct Group {
    std::string description;
    bool shared = false;
    std::set<std::string> members;  // usernames
    std::set<std::string> admins;
  };

  // Listens on 127.0.0.1 and serves from a background thread until destroyed; throws
  // boost::system::system_error when the port cannot be bound. The default uses Options{}.
  explicit OpenfireStandin(Options options);
  OpenfireStandin();
  ~OpenfireStandin();
  OpenfireStandin(const OpenfireStandin&) = delete;
  OpenfireStandin& operator=(const OpenfireStandin&) = delete;

  // The port it listens on (the one asked for, or the free one it picked).
  std::uint16_t port() const;
  // "http://127.0.0.1:<port>/plugins/restapi/v1"
  std::string url() const;

  // The server's state, for tests to inspect or to seed (all thread-safe).
  std::set<std::string> users() const;
  std::map<std::string, Group> groups() const;
  std::set<std::string> lockouts() const;
  std::map<std::string, std::string> properties() const;
  void set_property(const std::string& key, const std::string& value);
  void put_group(const std::string& name, const Group& group);
  // "METHOD target -> status" for every request so far, oldest first.
  std::vector<std::string> requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evpn::test
