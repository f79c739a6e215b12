#include "tests/support/openfire_server.hpp"

#include "common/net/https_client.hpp"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace evpn::test {

namespace fs = std::filesystem;

namespace {

constexpr auto start_timeout = std::chrono::seconds(180);

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::optional<fs::path> OpenfireServer::from_environment() {
  const char* home = std::getenv("EVPN_OPENFIRE_HOME");
  if (!home || !*home) return std::nullopt;
  return fs::path(home);
}

OpenfireServer::OpenfireServer(Options options)
    : options_(std::move(options)), c2s_port_(free_port()), admin_port_(free_port()) {
  while (admin_port_ == c2s_port_) admin_port_ = free_port();
  const auto& from = options_.installation;
  if (!fs::exists(from / "bin/openfire.sh") || !fs::exists(from / "lib/startup.jar"))
    throw std::runtime_error(from.string() + " is not an Openfire installation (no bin/openfire.sh, lib/startup.jar)");
  if (!fs::exists(from / "plugins/restapi.jar"))
    throw std::runtime_error(from.string() + " has no plugins/restapi.jar (the REST API plugin)");
  // Everything but the state a previous run of that installation left.
  fs::create_directories(options_.home);
  for (const auto& entry : fs::directory_iterator(from)) {
    const auto name = entry.path().filename();
    if (name == "embedded-db" || name == "logs") continue;
    fs::copy(entry.path(), options_.home / name, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  }
  // Plugins unpacked by an earlier run would be loaded instead of their jars.
  for (const auto& entry : fs::directory_iterator(options_.home / "plugins"))
    if (entry.is_directory() && entry.path().filename() != "admin") fs::remove_all(entry.path());
  fs::create_directories(options_.home / "logs");
  write_config();
}

OpenfireServer::~OpenfireServer() { stop(); }

std::string OpenfireServer::api_url() const {
  return "http://127.0.0.1:" + std::to_string(admin_port_) + "/plugins/restapi/v1";
}

void OpenfireServer::write_config() const {
  // Read by autosetup at the first start; the properties outside <autosetup> are copied into the
  // database then, so that they hold from the first start on. Listeners the tests do not use
  // (server-to-server, components, connection managers, BOSH, the file transfer proxy, direct
  // TLS, the admin console's HTTPS) are off; the others bind 127.0.0.1 only.
  const auto& o = options_;
  std::ofstream xml(o.home / "conf/openfire.xml", std::ios::trunc);
  xml << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jive>\n"
      << "  <adminConsole><port>" << admin_port_ << "</port><securePort>-1</securePort>"
      << "<interface>127.0.0.1</interface>"
      << "<access><allow-wildcards-in-excludes>true</allow-wildcards-in-excludes></access></adminConsole>\n"
      << "  <network><interface>127.0.0.1</interface></network>\n"
      << "  <locale>en</locale>\n"
      << "  <connectionProvider><className>org.jivesoftware.database.EmbeddedConnectionProvider</className>"
      << "</connectionProvider>\n"
      << "  <plugin><restapi><enabled>true</enabled><httpAuth>secret</httpAuth><secret>" << o.secret
      << "</secret></restapi></plugin>\n"
      << "  <xmpp><socket><plain><port>" << c2s_port_ << "</port></plain></socket>\n"
      << "    <server><socket><active>false</active><ssl><active>false</active></ssl></socket></server>\n"
      << "    <component><socket><active>false</active></socket><ssl><active>false</active></ssl></component>\n"
      << "    <multiplex><socket><active>false</active></socket></multiplex>\n"
      << "    <proxy><enabled>false</enabled></proxy></xmpp>\n"
      << "  <httpbind><enabled>false</enabled></httpbind>\n"
      << "  <autosetup><run>true</run><locale>en</locale>\n"
      << "    <xmpp><domain>" << o.domain << "</domain><fqdn>" << o.domain << "</fqdn>"
      << "<socket><ssl><active>false</active></ssl></socket></xmpp>\n"
      << "    <database><mode>embedded</mode></database>\n"
      << "    <admin><email>admin@" << o.domain << "</email><password>" << o.secret << "</password></admin>\n"
      << "  </autosetup>\n</jive>\n";
  if (!xml) throw std::runtime_error("cannot write " + (o.home / "conf/openfire.xml").string());
}

void OpenfireServer::start() {
  if (process_ && process_->alive()) return;
  process_.emplace(std::vector<std::string>{(options_.home / "bin/openfire.sh").string()},
                   options_.home / "logs/stdout.log", Environment{}, options_.home);
  const auto deadline = std::chrono::steady_clock::now() + start_timeout;
  for (;;) {
    if (!process_->alive()) {
      const int code = process_->stop();
      process_.reset();
      throw std::runtime_error("Openfire exited with code " + std::to_string(code) + " while starting; its log:\n" +
                               log_text());
    }
    // Readiness needs no secret; an authenticated read proves the plugin took the seeded one.
    if (api("GET", "/system/properties/xmpp.domain").status == 200 &&
        wait_for_port(c2s_port_, std::chrono::milliseconds(0)))
      return;
    if (std::chrono::steady_clock::now() >= deadline) {
      stop();
      throw std::runtime_error("Openfire was not ready within 180 s; its log:\n" + log_text());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void OpenfireServer::stop() {
  if (!process_) return;
  process_->stop(SIGTERM, std::chrono::seconds(30));
  process_.reset();
}

void OpenfireServer::restart() {
  stop();
  start();
}

std::string OpenfireServer::log_text() const {
  return read_text(options_.home / "logs/openfire.log") + read_text(options_.home / "logs/stdout.log");
}

OpenfireServer::ApiAnswer OpenfireServer::api(const std::string& method, const std::string& path,
                                              const std::string& body) const {
  auto url = net::parse_url(api_url() + path);
  if (!url) throw std::runtime_error("bad REST API path " + path);
  net::HttpRequest request{method, *url, {{"Authorization", options_.secret}, {"Accept", "application/json"}}, body};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  auto response = net::HttpClient(net::ClientTls{}).send(request);
  if (!response) return {};
  return {response->status, std::move(response->body)};
}

void OpenfireServer::set_property(const std::string& key, const std::string& value) const {
  const ApiAnswer answer = api("POST", "/system/properties", nlohmann::json{{"key", key}, {"value", value}}.dump());
  if (answer.status != 201)
    throw std::runtime_error("Openfire answered setting " + key + " with HTTP " + std::to_string(answer.status) +
                             ": " + answer.body);
}

}  // namespace evpn::test
