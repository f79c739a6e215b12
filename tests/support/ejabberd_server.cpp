#include "tests/support/ejabberd_server.hpp"

#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/certificate.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/https_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace evpn::test {
namespace fs = std::filesystem;
namespace {

constexpr auto start_timeout = std::chrono::seconds(30);
constexpr const char* register_account_script = EVPN_SOURCE_DIR "/deploy/ejabberd/register-account.script";

std::string random_password() { return crypto::to_hex(crypto::random_bytes(16)); }

bool holds_ejabberd(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with("ejabberd") &&
        fs::exists(entry.path() / "ebin" / "ejabberd.app", ec)) {
      return true;
    }
  }
  return false;
}

// The directory holding ejabberd-<version>/ebin, for ERL_LIBS. Debian puts it in the multiarch
// library directory (/usr/lib/x86_64-linux-gnu), not in Erlang's own lib directory;
// EVPN_EJABBERD_ERL_LIBS overrides the search.
std::string ejabberd_erl_libs() {
  if (const char* env = std::getenv("EVPN_EJABBERD_ERL_LIBS")) return env;
  std::vector<fs::path> candidates = {"/usr/lib/erlang/lib", "/usr/local/lib/erlang/lib"};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib", ec)) {
    if (entry.is_directory(ec)) candidates.push_back(entry.path());
  }
  const auto found = std::find_if(candidates.begin(), candidates.end(), holds_ejabberd);
  if (found == candidates.end()) {
    throw std::runtime_error(
        "ejabberd's Erlang application (ejabberd-*/ebin/ejabberd.app) was not found under /usr/lib; "
        "install the ejabberd package or set EVPN_EJABBERD_ERL_LIBS");
  }
  return found->string();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

EjabberdServer::EjabberdServer(Options options)
    : options_(std::move(options)),
      c2s_port_(free_port()),
      http_port_(free_port()),
      ca_account_{"evpn-ca@" + options_.domain, random_password()},
      harness_account_{"tests@" + options_.domain, random_password()} {
  if (c2s_port_ == http_port_) http_port_ = free_port();
}

fs::path EjabberdServer::ca_account_secret_file() const { return options_.state_dir / "ca-account.secret"; }

EjabberdServer::~EjabberdServer() { stop(); }

std::string EjabberdServer::api_url() const {
  return "http://127.0.0.1:" + std::to_string(http_port_) + "/api";
}

void EjabberdServer::write_config() const {
  const auto& o = options_;
  // The same template as the demo and the deployment example: what is tested is what ships.
  std::ifstream in(fs::path(EVPN_SOURCE_DIR) / "deploy/ejabberd/ejabberd.yml.in");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) throw std::runtime_error("cannot read deploy/ejabberd/ejabberd.yml.in");
  for (const auto& [name, value] : {std::pair<std::string, std::string>{"@DOMAIN@", o.domain},
                                    {"@SERVER_PEM@", o.server_pem.string()},
                                    {"@CA_FILE@", o.ca_file.string()},
                                    {"@C2S_PORT@", std::to_string(c2s_port_)},
                                    {"@HTTP_PORT@", std::to_string(http_port_)},
                                    {"@ADMIN_JID@", ca_account_.jid}})
    for (auto at = text.find(name); at != std::string::npos; at = text.find(name, at + value.size()))
      text.replace(at, name.size(), value);
  if (!revocation_rule_) {
    const std::string rule = "    deny: evpn_revoked\n";
    const auto deny = text.find(rule);
    if (deny == std::string::npos) throw std::runtime_error("deploy/ejabberd/ejabberd.yml.in has no " + rule);
    text.erase(deny, rule.size());
  }
  // The tests' own account, to look at what evpn-ca did; the CA's account keeps exactly the
  // permissions that ship.
  const std::string permissions = "\napi_permissions:\n";
  const auto at = text.find(permissions);
  if (at == std::string::npos) throw std::runtime_error("deploy/ejabberd/ejabberd.yml.in has no api_permissions");
  text.insert(at + permissions.size(), "  \"tests: look at everything\":\n    from: [mod_http_api]\n    who:\n      user: \"" +
                                           harness_account_.jid + "\"\n    what: \"*\"\n");
  std::ofstream yml(o.state_dir / "ejabberd.yml", std::ios::trunc);
  yml << text;
  if (!yml) throw std::runtime_error("cannot write " + (o.state_dir / "ejabberd.yml").string());
}

void EjabberdServer::start() {
  if (running()) return;
  if (options_.server_pem.empty() || options_.ca_file.empty() || options_.state_dir.empty()) {
    throw std::invalid_argument("EjabberdServer needs server_pem, ca_file and state_dir");
  }
  const fs::path spool = options_.state_dir / "spool";
  const fs::path logs = options_.state_dir / "logs";
  fs::create_directories(spool);
  fs::create_directories(logs);
  write_config();
  if (auto written = evpn::fs::write_file_atomic(ca_account_secret_file(), ca_account_.password + "\n",
                                           fs::perms::owner_read | fs::perms::owner_write);
      !written)
    throw std::runtime_error("cannot write " + ca_account_secret_file().string() + ": " + written.error().detail);

  // Started as the current user with no node name: no epmd, no distribution port, nothing
  // listening but the two loopback ports above. exec chains erl -> erlexec -> beam.smp, so the
  // pid we hold is the VM itself. Without distribution ejabberdctl cannot register the CA's
  // account, so the VM does it itself once ejabberd has started (-s returns only then).
  process_.emplace(
      std::vector<std::string>{"erl", "+K", "true", "+P", "250000", "-noinput", "-mnesia", "dir",
                               "\"" + spool.string() + "\"", "-s", "ejabberd", "-eval",
                               std::string("{ok, _} = file:script(\"") + register_account_script + "\")."},
      logs / "stdout.log",
      Environment{{"EJABBERD_CONFIG_PATH", (options_.state_dir / "ejabberd.yml").string()},
                  {"EJABBERD_LOG_PATH", (logs / "ejabberd.log").string()},
                  {"EVPN_EJABBERD_ACCOUNT", ca_account_.jid},
                  {"EVPN_EJABBERD_ACCOUNT_SECRET_FILE", ca_account_secret_file().string()},
                  {"ERL_LIBS", ejabberd_erl_libs()},
                  {"ERL_CRASH_DUMP_BYTES", "0"}},
      spool);

  const auto deadline = std::chrono::steady_clock::now() + start_timeout;
  for (;;) {
    if (!process_->alive()) {
      const int code = process_->stop();
      process_.reset();
      throw std::runtime_error("ejabberd exited with code " + std::to_string(code) +
                               " while starting; its log:\n" + log_text());
    }
    if (api_as(ca_account_, "status").status == 200 && wait_for_port(c2s_port_, std::chrono::milliseconds(0))) {
      const ApiAnswer harness = api_as(
          ca_account_, "register",
          {{"user", harness_account_.jid.substr(0, harness_account_.jid.find('@'))}, {"host", options_.domain},
           {"password", harness_account_.password}});
      // The template's c2s access rule names this group (evpn-ca's revocation), and ejabberd
      // fails every session while it is missing. evpn-ca creates it at the first enrollment;
      // tests that log in without one need it as well.
      const ApiAnswer group = api("srg_create", {{"group", "_evpn-revoked"}, {"host", options_.domain},
                                                 {"label", "revoked"}, {"description", ""}, {"display", ""}});
      // 409 after a restart: the spool still holds the tests' account.
      if ((harness.status != 200 && harness.status != 409) || group.status != 200) {
        throw std::runtime_error("ejabberd register " + harness_account_.jid + " answered " +
                                 std::to_string(harness.status) + ": " + harness.body +
                                 "; srg_create _evpn-revoked answered " + std::to_string(group.status) + ": " +
                                 group.body);
      }
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stop();
      throw std::runtime_error("ejabberd was not ready within 30 s; its log:\n" + log_text());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void EjabberdServer::stop() {
  if (!process_) return;
  process_->stop(SIGTERM, std::chrono::seconds(10));
  process_.reset();
}

void EjabberdServer::restart() {
  stop();
  start();
}

bool EjabberdServer::running() { return process_ && process_->alive(); }

std::string EjabberdServer::log_text() const {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.state_dir / "logs", ec)) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& file : files) text += "==> " + file.filename().string() + "\n" + read_file(file);
  return text;
}

bool EjabberdServer::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log_text().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

EjabberdServer::ApiAnswer EjabberdServer::api(const std::string& command, const nlohmann::json& args) const {
  return api_as(harness_account_, command, args);
}

EjabberdServer::ApiAnswer EjabberdServer::api_as(const std::optional<ApiAccount>& account, const std::string& command,
                                                 const nlohmann::json& args) const {
  auto url = net::parse_url(api_url());
  if (!url) throw std::logic_error(url.error().detail);
  net::HttpRequest request{"POST", net::join(*url, command), {{"Content-Type", "application/json"}}, args.dump()};
  if (account)
    request.headers.emplace_back("Authorization", ca::xmpp::basic_authorization(account->jid, account->password));
  auto response = net::HttpClient(net::ClientTls{}, std::chrono::seconds(10)).send(request);
  if (!response) return {0, response.error().detail};
  return {response->status, std::move(response->body)};
}

void EjabberdServer::register_user(const std::string& user) const {
  const std::string password = crypto::to_hex(crypto::random_bytes(16));
  const ApiAnswer a =
      api("register", {{"user", user}, {"host", options_.domain}, {"password", password}});
  // 409: the user is already registered, which is what we want.
  if (a.status != 200 && a.status != 409) {
    throw std::runtime_error("ejabberd register " + user + " answered " + std::to_string(a.status) +
                             ": " + a.body);
  }
}

}  // namespace evpn::test
