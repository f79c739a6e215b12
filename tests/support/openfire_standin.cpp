#include "tests/support/openfire_standin.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

namespace evpn::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Status = http::status;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
const std::string base_path = "/plugins/restapi/v1";

struct Reply {
  Status status = Status::ok;
  std::string content_type;
  std::string body;
  std::string location;
};

// What the handlers need from a request: decoded path segments below the base path, and the
// headers that drive content negotiation.
struct Call {
  http::verb method;
  std::string path;  // below base_path, still encoded
  std::vector<std::string> segments;
  std::string accept;
  std::string content_type;
  std::string authorization;
  std::string body;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "application/json; charset=UTF-8" -> "application/json"
std::string media(const std::string& header) {
  std::string type = lower(header.substr(0, header.find(';')));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  return type;
}

std::optional<std::vector<std::string>> decode_segments(std::string_view path) {
  std::vector<std::string> segments;
  std::string current;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/') {
      if (!current.empty()) segments.push_back(std::move(current));
      current.clear();
    } else if (path[i] == '%') {
      if (i + 2 >= path.size() || !std::isxdigit(static_cast<unsigned char>(path[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(path[i + 2])))
        return std::nullopt;
      current += static_cast<char>(std::stoi(std::string(path.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      current += path[i];
    }
  }
  if (!current.empty()) segments.push_back(std::move(current));
  return segments;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JAXB-like XML for an entity: objects become elements, lists repeat their singular name.
std::string to_xml(const std::string& name, const json& value) {
  if (value.is_null()) return "<" + name + "/>";
  std::string inner;
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) inner += to_xml(key, item);
  } else if (value.is_array()) {
    const std::string item_name = name.size() > 1 && name.back() == 's' ? name.substr(0, name.size() - 1) : name;
    for (const auto& item : value) inner += to_xml(item_name, item);
  } else {
    inner = xml_escape(value.is_string() ? value.get<std::string>() : value.dump());
  }
  return "<" + name + ">" + inner + "</" + name + ">";
}

std::string render(const std::string& type, const std::string& root, const json& value) {
  if (type == "application/json") return value.dump();
  return "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>" + to_xml(root, value);
}

Reply empty(Status status) { return {status, "", "", ""}; }

// Jetty's page for errors thrown by the plugin's filters (401, 403, 415, ...).
Reply jetty_error(Status status) {
  const std::string code = std::to_string(static_cast<int>(status)) + " " + std::string(http::obsolete_reason(status));
  return {status, "text/html;charset=iso-8859-1",
          "<html><head><title>Error " + code + "</title></head><body><h2>HTTP ERROR " + code + "</h2></body></html>",
          ""};
}

// An entity answer: XML unless the client accepts JSON; 406 when it accepts neither.
Reply entity(const Call& call, Status status, const std::string& root, const json& value) {
  const std::string accept = lower(call.accept);
  if (accept.find("application/json") != std::string::npos)
    return {status, "application/json", render("application/json", root, value), ""};
  if (accept.empty() || accept.find("application/xml") != std::string::npos || accept.find("*/*") != std::string::npos)
    return {status, "application/xml", render("application/xml", root, value), ""};
  return jetty_error(Status::not_acceptable);
}

// The plugin's mapped error: its media type is the single concrete Accept type, else the
// request's Content-Type, else XML.
Reply error(const Call& call, Status status, const std::string& exception, const std::string& message,
            const std::string& resource) {
  std::string type = "application/xml";
  if (!call.accept.empty() && call.accept.find(',') == std::string::npos && call.accept.find('*') == std::string::npos)
    type = media(call.accept);
  else if (!call.content_type.empty())
    type = media(call.content_type);
  if (type != "application/json") type = "application/xml";
  json body{{"exception", exception}, {"message", message}, {"resource", resource}};
  return {status, type, render(type, "error", body), ""};
}

// An unmapped exception (NullPointerException, ...): Openfire's servlet answers 500.
Reply servlet_failure(const Call& call) {
  json body{
      {"servlet", "PluginServlet"}, {"message", "Request failed."}, {"url", base_path + call.path}, {"status", "500"}};
  return {Status::internal_server_error, "application/json", body.dump(), ""};
}

// The request entity: JSON only (the real plugin also reads XML), known keys only (Jackson
// fails on unknown properties). A Reply when the entity is refused.
std::optional<Reply> read_entity(const Call& call, std::initializer_list<const char*> keys, json& out) {
  if (media(call.content_type) != "application/json") return jetty_error(Status::unsupported_media_type);
  if (call.body.empty())
    return error(call, Status::bad_request, "IllegalArgumentException", "The request has no entity",
                 base_path + call.path);
  out = json::parse(call.body, nullptr, false);
  if (out.is_discarded() || !out.is_object())
    return Reply{Status::bad_request, "text/plain", "Unable to process JSON", ""};
  for (const auto& [key, value] : out.items())
    if (std::find_if(keys.begin(), keys.end(), [&](const char* k) { return key == k; }) == keys.end())
      return Reply{Status::bad_request, "text/plain", "Unrecognized field \"" + key + "\"", ""};
  return std::nullopt;
}

std::string text(const json& entity, const char* key) {
  auto it = entity.find(key);
  return it != entity.end() && it->is_string() ? it->get<std::string>() : "";
}

// Nodeprep, as far as the tests need it: lower case, and no characters it prohibits.
std::optional<std::string> nodeprep(const std::string& name) {
  if (name.empty() || name.find_first_of(" \"&'/:<>@") != std::string::npos) return std::nullopt;
  if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) return std::nullopt;
  return lower(name);
}

std::optional<std::string> base64_decode(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - static_cast<std::size_t>(std::count(text.end() - 2, text.end(), '=')));
  return out;
}

}  // namespace

struct OpenfireStandin::Impl {
  struct User {
    std::string password;
    std::string name;
    std::string email;
  };

  Options options;
  mutable std::mutex mutex;
  std::map<std::string, User> users;
  std::map<std::string, Group> groups;
  std::set<std::string> lockouts;
  std::map<std::string, std::string> properties;
  std::vector<std::string> log;

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  explicit Impl(Options o) : options(std::move(o)) {
    properties = {{"xmpp.domain", options.domain},
                  {"plugin.restapi.enabled", options.disabled ? "false" : "true"},
                  {"plugin.restapi.secret", options.secret},
                  {"plugin.restapi.httpAuth", options.http_auth},
                  {"adminConsole.access.allow-wildcards-in-excludes", "true"}};
  }

  std::string jid(const std::string& member) const {
    return member.find('@') == std::string::npos ? member + "@" + options.domain : member;
  }

  // "node1" or "node1@<domain>" -> "node1"; other JIDs stay whole; nullopt when unparsable.
  std::optional<std::string> member_of(const std::string& value) const {
    const auto at = value.find('@');
    if (at == std::string::npos) return nodeprep(value);
    if (at == 0 || at + 1 == value.size() || value.find('/') != std::string::npos) return std::nullopt;
    auto node = nodeprep(value.substr(0, at));
    if (!node) return std::nullopt;
    return value.substr(at + 1) == options.domain ? *node : *node + "@" + value.substr(at + 1);
  }

  json group_json(const std::string& name, const Group& g) const {
    json members = json::array(), admins = json::array();
    for (const auto& m : g.members) members.push_back(jid(m));
    for (const auto& a : g.admins) admins.push_back(jid(a));
    return {
        {"name", name}, {"description", g.description}, {"admins", admins}, {"members", members}, {"shared", g.shared}};
  }

  std::string property(const std::string& key) const {
    auto it = properties.find(key);
    return it == properties.end() ? "" : it->second;
  }

  // Everything the plugin's AuthFilter and the admin console's filter decide before a handler.
  std::optional<Reply> refuse(const Call& call) const {
    if (property("adminConsole.access.allow-wildcards-in-excludes") != "true")
      return Reply{Status::found, "", "", "/login.jsp?url=" + base_path + call.path};
    const bool status_endpoint = !call.segments.empty() && call.segments[0] == "system" && call.segments.size() >= 2 &&
                                 (call.segments[1] == "readiness" || call.segments[1] == "liveness");
    if (status_endpoint) return std::nullopt;
    if (property("plugin.restapi.enabled") != "true") return jetty_error(Status::forbidden);
    if (call.authorization.empty()) return jetty_error(Status::unauthorized);
    if (property("plugin.restapi.httpAuth") == "basic") {
      const auto space = call.authorization.find(' ');
      auto decoded = space == std::string::npos ? std::nullopt : base64_decode(call.authorization.substr(space + 1));
      if (!decoded || *decoded != options.admin_user + ":" + options.admin_password)
        return jetty_error(Status::unauthorized);
    } else if (call.authorization != property("plugin.restapi.secret")) {
      return jetty_error(Status::unauthorized);
    }
    return std::nullopt;
  }

  Reply route(const Call& call) {
    if (auto refused = refuse(call)) return *refused;
    const auto& s = call.segments;
    const auto m = call.method;
    if (s.empty()) return jetty_error(Status::not_found);
    if (s[0] == "system") {
      if (s.size() >= 2 && (s[1] == "readiness" || s[1] == "liveness")) return empty(Status::ok);
      if (s.size() == 2 && s[1] == "properties") {
        if (m == http::verb::get) return list_properties(call);
        if (m == http::verb::post) return create_property(call);
      }
      if (s.size() == 3 && s[1] == "properties") return property(call, s[2]);
    }
    if (s[0] == "users") {
      if (s.size() == 1 && m == http::verb::post) return create_user(call);
      if (s.size() == 1 && m == http::verb::get) return list_users(call);
      if (s.size() == 2) return user(call, s[1]);
      if (s.size() == 3 && s[2] == "groups" && m == http::verb::get) return user_groups(call, s[1]);
      if (s.size() == 4 && s[2] == "groups") return membership(call, s[1], s[3]);
    }
    if (s[0] == "lockouts" && s.size() == 2) return lockout(call, s[1]);
    if (s[0] == "groups") {
      if (s.size() == 1 && m == http::verb::post) return create_group(call);
      if (s.size() == 1 && m == http::verb::get) return list_groups(call);
      if (s.size() == 2) return group(call, s[1]);
    }
    return jetty_error(Status::not_found);
  }

  Reply create_user(const Call& call) {
    json e;
    if (auto refused = read_entity(call, {"username", "password", "name", "email", "properties"}, e)) return *refused;
    if (!e.contains("username") || e["username"].is_null()) return servlet_failure(call);
    const std::string raw = text(e, "username");
    if (raw.empty())
      return error(call, Status::bad_request, "IllegalArgumentException", "Could not create new user", "users");
    if (!e.contains("password") || e["password"].is_null())
      return error(call, Status::bad_request, "PasswordIsNull", "Could not create new user", raw);
    auto name = nodeprep(raw);
    if (!name || text(e, "password").empty()) return servlet_failure(call);
    if (users.count(*name))
      return error(call, Status::conflict, "UserAlreadyExistsException", "Could not create new user", *name);
    users[*name] = {text(e, "password"), text(e, "name"), text(e, "email")};
    return empty(Status::created);
  }

  Reply list_users(const Call& call) const {
    json list = json::array();
    for (const auto& [name, u] : users) list.push_back({{"username", name}, {"name", u.name}, {"email", u.email}});
    return entity(call, Status::ok, "users", {{"users", list}});
  }

  // Users are looked up exactly as given: loadUser does not lower-case.
  Reply user(const Call& call, const std::string& name) {
    auto it = users.find(name);
    if (it == users.end()) return error(call, Status::not_found, "UserNotFoundException", "Could not get user", name);
    if (call.method == http::verb::get)
      return entity(
          call, Status::ok, "user",
          {{"username", name}, {"name", it->second.name}, {"email", it->second.email}, {"properties", json::array()}});
    if (call.method == http::verb::delete_) {
      users.erase(it);
      lockouts.erase(name);
      for (auto& [g, group] : groups) {
        group.members.erase(name);
        group.admins.erase(name);
      }
      return empty(Status::ok);
    }
    return jetty_error(Status::method_not_allowed);
  }

  Reply user_groups(const Call& call, const std::string& name) const {
    if (!users.count(name)) return error(call, Status::not_found, "UserNotFoundException", "Could not get user", name);
    json names = json::array();
    for (const auto& [g, group] : groups)
      if (group.members.count(name)) names.push_back(g);
    return entity(call, Status::ok, "groups", {{"groupnames", names}});
  }

  // Does not check that the user exists; a missing group is "auto-created" with null lists,
  // which fails before anything is stored.
  Reply membership(const Call& call, const std::string& name, const std::string& group_name) {
    auto it = groups.find(group_name);
    if (call.method == http::verb::post) {
      if (it == groups.end()) return servlet_failure(call);
      it->second.members.insert(name);
      return empty(Status::created);
    }
    if (call.method == http::verb::delete_) {
      if (it == groups.end())
        return error(call, Status::not_found, "GroupNotFoundException", "Could not find group", group_name);
      it->second.members.erase(name);
      return empty(Status::ok);
    }
    return jetty_error(Status::method_not_allowed);
  }

  Reply lockout(const Call& call, const std::string& name) {
    if (!users.count(name)) return error(call, Status::not_found, "UserNotFoundException", "Could not get user", name);
    if (call.method == http::verb::post) {
      lockouts.insert(name);
      return empty(Status::created);
    }
    if (call.method == http::verb::delete_) {
      lockouts.erase(name);
      return empty(Status::ok);
    }
    return jetty_error(Status::method_not_allowed);
  }

  // members/admins of a group entity as stored names; a Reply when they are refused. A list that
  // is missing fails with the plugin's NullPointerException.
  std::optional<Reply> read_lists(const Call& call, const json& e, Group& out) const {
    for (auto [key, target] : {std::pair{"members", &out.members}, {"admins", &out.admins}}) {
      if (!e.contains(key) || e[key].is_null()) return servlet_failure(call);
      if (!e[key].is_array()) return Reply{Status::bad_request, "text/plain", "Cannot deserialize", ""};
      for (const auto& item : e[key]) {
        auto member = item.is_string() ? member_of(item.get<std::string>()) : std::nullopt;
        if (!member)
          return error(call, Status::bad_request, "IllegalArgumentException", "Cannot parse a member value as a JID",
                       text(e, "name"));
        target->insert(*member);
      }
    }
    return std::nullopt;
  }

  Reply create_group(const Call& call) {
    json e;
    if (auto refused = read_entity(call, {"name", "description", "shared", "members", "admins"}, e)) return *refused;
    if (!e.contains("name") || e["name"].is_null()) return servlet_failure(call);
    const std::string name = text(e, "name");
    if (name.empty())
      return error(call, Status::bad_request, "IllegalArgumentException", "Could not create new group", "groups");
    // The lists are read before the duplicate check: a duplicate without them is a 500 too.
    Group g;
    if (auto refused = read_lists(call, e, g)) return *refused;
    if (groups.count(name))
      return error(call, Status::conflict, "GroupAlreadyExistsException", "Could not create a group", name);
    g.description = text(e, "description");
    g.shared = e.value("shared", false);
    groups[name] = std::move(g);
    return empty(Status::created);
  }

  // The list shows names and descriptions only: "shared" is always false there.
  Reply list_groups(const Call& call) const {
    json list = json::array();
    for (const auto& [name, g] : groups)
      list.push_back({{"name", name}, {"description", g.description}, {"shared", false}});
    return entity(call, Status::ok, "groups", {{"groups", list}});
  }

  Reply group(const Call& call, const std::string& name) {
    auto it = groups.find(name);
    if (call.method == http::verb::put) {
      json e;
      if (auto refused = read_entity(call, {"name", "description", "shared", "members", "admins"}, e)) return *refused;
      if (text(e, "name").empty())
        return error(call, Status::bad_request, "IllegalArgumentException", "Could not update new group", "groups");
      if (text(e, "name") != name)
        return error(call, Status::bad_request, "IllegalArgumentException",
                     "Could not update the group. The group name is different to the payload group name.",
                     name + " != " + text(e, "name"));
      if (it == groups.end())
        return error(call, Status::not_found, "GroupNotFoundException", "Could not find group", name);
      // Since plugin 1.8.1 the lists sent replace the group's lists.
      Group g;
      if (auto refused = read_lists(call, e, g)) return *refused;
      g.description = text(e, "description");
      g.shared = e.value("shared", false);
      it->second = std::move(g);
      return empty(Status::ok);
    }
    if (it == groups.end())
      return error(call, Status::not_found, "GroupNotFoundException", "Could not find group", name);
    if (call.method == http::verb::get) return entity(call, Status::ok, "group", group_json(name, it->second));
    if (call.method == http::verb::delete_) {
      groups.erase(it);
      return empty(Status::ok);
    }
    return jetty_error(Status::method_not_allowed);
  }

  Reply list_properties(const Call& call) const {
    json list = json::array();
    for (const auto& [key, value] : properties) list.push_back({{"key", key}, {"value", value}});
    return entity(call, Status::ok, "properties", {{"properties", list}});
  }

  // POST creates or overwrites.
  Reply create_property(const Call& call) {
    json e;
    if (auto refused = read_entity(call, {"key", "value"}, e)) return *refused;
    if (text(e, "key").empty()) return servlet_failure(call);
    properties[text(e, "key")] = text(e, "value");
    return empty(Status::created);
  }

  // GET, PUT and DELETE all answer 404 for a property that is not set.
  Reply property(const Call& call, const std::string& key) {
    auto it = properties.find(key);
    if (call.method == http::verb::put) {
      json e;
      if (auto refused = read_entity(call, {"key", "value"}, e)) return *refused;
      if (it == properties.end())
        return error(call, Status::not_found, "PropertyNotFoundException", "Could not find property for update",
                     text(e, "key"));
      if (text(e, "key") != key)
        return error(call, Status::bad_request, "IllegalArgumentException",
                     "Path property name and entity property name doesn't match", key);
      it->second = text(e, "value");
      return empty(Status::ok);
    }
    if (it == properties.end())
      return error(call, Status::not_found, "PropertyNotFoundException", "Could not find property", key);
    if (call.method == http::verb::get)
      return entity(call, Status::ok, "property", {{"key", key}, {"value", it->second}});
    if (call.method == http::verb::delete_) {
      properties.erase(it);
      return empty(Status::ok);
    }
    return jetty_error(Status::method_not_allowed);
  }

  http::response<http::string_body> respond(const http::request<http::string_body>& request) {
    const std::string target(request.target());
    const std::string path = target.substr(0, target.find('?'));
    Call call{request.method(),
              "",
              {},
              std::string(request[http::field::accept]),
              std::string(request[http::field::content_type]),
              std::string(request[http::field::authorization]),
              request.body()};
    Reply reply;
    std::optional<std::vector<std::string>> segments;
    if (path.rfind(base_path, 0) == 0 && (segments = decode_segments(path.substr(base_path.size())))) {
      call.path = path.substr(base_path.size());
      call.segments = std::move(*segments);
    }
    {
      std::lock_guard lock(mutex);
      reply = segments ? route(call) : jetty_error(Status::not_found);
      log.push_back(std::string(request.method_string()) + " " + target + " -> " +
                    std::to_string(static_cast<int>(reply.status)));
      if (options.print_requests) std::cout << "openfire-standin: " << log.back() << std::endl;
    }
    http::response<http::string_body> response{reply.status, request.version()};
    response.set(http::field::server, "openfire-standin");
    if (!reply.content_type.empty()) response.set(http::field::content_type, reply.content_type);
    if (!reply.location.empty()) response.set(http::field::location, reply.location);
    response.body() = std::move(reply.body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    return response;
  }

  static asio::awaitable<void> session(Impl& impl, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(std::chrono::seconds(30));
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      auto [rec, read] = co_await http::async_read(stream, buffer, parser, as_result);
      if (rec) break;
      auto response = impl.respond(parser.get());
      const bool keep_alive = response.keep_alive();
      auto [wec, written] = co_await http::async_write(stream, response, as_result);
      if (wec || !keep_alive) break;
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<void> accept_loop(Impl& impl) {
    for (;;) {
      auto [ec, socket] = co_await impl.acceptor.async_accept(as_result);
      if (ec) co_return;
      asio::co_spawn(impl.ioc, session(impl, std::move(socket)), asio::detached);
    }
  }
};

OpenfireStandin::OpenfireStandin() : OpenfireStandin(Options{}) {}

OpenfireStandin::OpenfireStandin(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& acceptor = impl_->acceptor;
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), impl_->options.port);
  acceptor.open(endpoint.protocol());
  // The integration test restarts the executable on the same port.
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  asio::co_spawn(impl_->ioc, Impl::accept_loop(*impl_), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

OpenfireStandin::~OpenfireStandin() {
  asio::post(impl_->ioc, [this] { impl_->acceptor.close(); });
  impl_->ioc.stop();
  impl_->thread.join();
}

std::uint16_t OpenfireStandin::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string OpenfireStandin::url() const { return "http://127.0.0.1:" + std::to_string(port()) + base_path; }

std::set<std::string> OpenfireStandin::users() const {
  std::lock_guard lock(impl_->mutex);
  std::set<std::string> names;
  for (const auto& [name, user] : impl_->users) names.insert(name);
  return names;
}

std::map<std::string, OpenfireStandin::Group> OpenfireStandin::groups() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->groups;
}

std::set<std::string> OpenfireStandin::lockouts() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->lockouts;
}

std::map<std::string, std::string> OpenfireStandin::properties() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->properties;
}

void OpenfireStandin::set_property(const std::string& key, const std::string& value) {
  std::lock_guard lock(impl_->mutex);
  impl_->properties[key] = value;
}

void OpenfireStandin::put_group(const std::string& name, const Group& group) {
  std::lock_guard lock(impl_->mutex);
  impl_->groups[name] = group;
}

std::vector<std::string> OpenfireStandin::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->log;
}

}  // namespace evpn::test
