#include "tests/support/deployment.hpp"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <stdexcept>

namespace evpn::test {

namespace fs = std::filesystem;

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

namespace {

std::uint16_t free_port_other_than(std::initializer_list<std::uint16_t> taken) {
  for (;;)
    if (auto port = free_port(); std::find(taken.begin(), taken.end(), port) == taken.end()) return port;
}

std::string run_or_throw(const std::vector<std::string>& argv) {
  const RunResult r = run(argv);
  if (r.exit_code != 0)
    throw std::runtime_error(argv[0] + " " + argv[1] + " exited with " + std::to_string(r.exit_code) + ": " + r.err);
  return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
}

}  // namespace

Deployment::Deployment(const std::string& prefix, const std::string& directory, const std::string& directory_url,
                       const std::vector<std::string>& init_options)
    : temp_(prefix),
      ca_dir_(temp_.path() / "ca"),
      // Constructed before `evpn-ca init` runs: it picks the ports the CA's config must name.
      xmpp_({domain, temp_.path() / "xmpp.pem", ca_dir_ / "ca.crt", temp_.path() / "ejabberd"}),
      ca_port_(free_port_other_than({xmpp_.c2s_port()})),
      ca_url_("https://127.0.0.1:" + std::to_string(ca_port_)),
      // Its own port: parallel deployments would clash on the default 9464.
      metrics_port_(free_port_other_than({xmpp_.c2s_port(), ca_port_})) {
  std::vector<std::string> init{EVPN_CA_BIN, "init", "--dir", ca_dir_, "--xmpp-domain", domain, "--xmpp-host",
                                 "127.0.0.1", "--xmpp-port", std::to_string(xmpp_.c2s_port()), "--directory", directory,
                                 "--directory-url", directory_url.empty() ? xmpp_.api_url() : directory_url,
                                 "--listen", "127.0.0.1:" + std::to_string(ca_port_), "--metrics-listen",
                                 "127.0.0.1:" + std::to_string(metrics_port_)};
  if (directory == "ejabberd")
    init.insert(init.end(), {"--directory-user", xmpp_.ca_account().jid, "--directory-secret-file",
                             xmpp_.ca_account_secret_file()});
  init.insert(init.end(), init_options.begin(), init_options.end());
  fingerprint_ = run_or_throw(init);
  evpn_ca({"server-cert", "--name", domain, "--name", "localhost", "--name", "127.0.0.1", "--out",
           temp_.path() / "xmpp"});
  xmpp_.start();
  start_ca();
}

void Deployment::start_ca() {
  ca_.emplace(std::vector<std::string>{EVPN_CA_BIN, "serve", "--dir", ca_dir_}, serve_log());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!wait_for_port(ca_port_, std::chrono::milliseconds(100))) {
    if (!ca_->alive() || std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("evpn-ca serve did not start listening on port " + std::to_string(ca_port_) +
                               "; its log:\n" + read_file(serve_log()));
  }
}

void Deployment::stop_ca() { ca_.reset(); }

void Deployment::kill_ca() {
  if (ca_) ca_->stop(SIGKILL);
  ca_.reset();
}

std::string Deployment::evpn_ca(std::vector<std::string> args) const { return evpn_ca_in(ca_dir_, std::move(args)); }

std::string Deployment::evpn_ca_in(const std::filesystem::path& ca_dir, std::vector<std::string> args) {
  std::vector<std::string> argv{EVPN_CA_BIN};
  // Sub-commands are one or two words ("group add"); --dir goes right after them.
  const bool two_words = args.size() > 1 && !args[1].starts_with("--");
  argv.insert(argv.end(), args.begin(), args.begin() + (two_words ? 2 : 1));
  argv.insert(argv.end(), {"--dir", ca_dir});
  argv.insert(argv.end(), args.begin() + (two_words ? 2 : 1), args.end());
  return run_or_throw(argv);
}

nlohmann::json Deployment::listing(std::vector<std::string> command) const {
  command.push_back("--json");
  return nlohmann::json::parse(evpn_ca(std::move(command)));
}

void Deployment::add_group(const std::string& name, const std::string& overlay, const std::string& lifetime) const {
  evpn_ca({"group", "add", "--name", name, "--overlay", overlay, "--lifetime", lifetime});
}

std::string Deployment::token(const std::string& group, const std::vector<std::string>& options) const {
  std::vector<std::string> args{"token", "create", "--group", group};
  args.insert(args.end(), options.begin(), options.end());
  return evpn_ca(args);
}

TestNode Deployment::node(const std::string& username) {
  TestNode n{username, dir() / "nodes" / (std::to_string(++nodes_) + "-" + username)};
  fs::create_directories(n.dir);
  return n;
}

std::vector<std::string> Deployment::enroll_command(const TestNode& node, const std::string& token) const {
  return {EVPN_AGENT_BIN, "enroll",         "--ca-url",      ca_url_,        "--fingerprint", fingerprint_,
          "--token",      token,            "--username",    node.username,  "--state-dir",   node.state(),
          "--evio-config", node.config(),   "--json"};
}

RunResult Deployment::enroll(const TestNode& node, const std::string& token, const Environment& env) const {
  return run(enroll_command(node, token), std::chrono::seconds(120), env);
}

}  // namespace evpn::test
