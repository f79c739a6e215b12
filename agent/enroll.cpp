#include "agent/enroll.hpp"

#include "agent/ca_client.hpp"
#include "agent/evio_config.hpp"
#include "agent/install.hpp"
#include "agent/pending_key.hpp"
#include "agent/system_trust.hpp"
#include "common/crypto/csr.hpp"
#include "common/fs/atomic_file.hpp"
#include "agent/log.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace evpn::agent {

namespace {

using nlohmann::json;

Result<void> fill_from_config_file(EnrollOptions& o) {
  if (o.config_file.empty()) return {};
  auto text = fs::read_file(o.config_file, 64 * 1024);
  if (!text) return text.error();
  json doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(Errc::invalid_request, o.config_file + " is not a JSON object");
  for (auto [key, field] : {std::pair{"ca_url", &o.ca_url}, {"fingerprint", &o.fingerprint}, {"token", &o.token},
                            {"username", &o.username}, {"state_dir", &o.state_dir}, {"evio_config", &o.evio_config},
                            {"xmpp_ca", &o.xmpp_ca}, {"key_type", &o.key_type}}) {
    auto it = doc.find(key);
    if (it == doc.end() || !field->empty()) continue;  // the command line wins
    if (!it->is_string()) return fail(Errc::invalid_request, o.config_file + ": '" + key + "' must be a string");
    *field = it->get<std::string>();
  }
  return {};
}

Outcome<EnrollOptions> complete(EnrollOptions o) {
  if (auto r = fill_from_config_file(o); !r) return Failure{exit_usage, r.error()};
  for (auto [value, fallback] : {std::pair{&o.state_dir, "/var/lib/evpn-agent"},
                                 {&o.evio_config, "/etc/opt/evio/config.json"}, {&o.key_type, "ec-p256"}})
    if (value->empty()) *value = fallback;
  for (auto [value, name] : {std::pair{&o.ca_url, "--ca-url"}, {&o.fingerprint, "--fingerprint"},
                             {&o.token, "--token"}, {&o.username, "--username"}})
    if (value->empty())
      return Failure{exit_usage, fail(Errc::invalid_request, std::string(name) + " is required (or set it in --config)")};
  return o;
}

struct Enrolled {
  protocol::EnrollmentResult answer;
  Installed installed;
};

Outcome<Enrolled> enroll(const EnrollOptions& o) {
  auto key_type = crypto::parse_key_type(o.key_type);
  if (!key_type) return Failure{exit_usage, key_type.error()};
  // Refuse a broken EdgeVPN config before the token is spent, not after.
  if (auto r = check_config_file(o.evio_config); !r) return Failure{exit_local, r.error()};

  log::info("pinning the CA root at " + o.ca_url);
  auto ca = CaClient::pin(o.ca_url, o.fingerprint, o.timeout);
  if (!ca) return Failure{exit_for_ca(ca.error()), ca.error()};

  const PendingKey pending(std::filesystem::path(o.state_dir) / ".enroll-key");
  auto key = pending.get(*key_type);
  if (!key) return Failure{exit_local, key.error()};
  auto csr = crypto::Csr::create(*key, o.username);
  if (!csr) return Failure{exit_local, csr.error()};
  log::info("requesting a certificate for " + o.username + " (" + o.key_type + " key)");
  auto answer = ca->enroll({o.token, csr->to_pem()});
  if (!answer) {
    pending.refused(answer.error());
    return Failure{exit_for_ca(answer.error()), answer.error()};
  }

  InstallRequest request;
  request.answer = &*answer;
  request.key = &*key;
  request.root = &ca->root();
  request.username = o.username;
  request.activation.state_dir = o.state_dir;
  request.activation.xmpp_ca = o.xmpp_ca;
  request.activation.login_deadline = o.timeout;
  request.state.ca_url = o.ca_url;
  request.state.fingerprint = ca->root().fingerprint_sha256();
  request.state.evio_config = o.evio_config;
  request.state.key_type = o.key_type;
  // After the CA's answer every failure (the login, a local write) keeps the pending key: the CA
  // has spent the token and holds the name for this key, and only a retry with it gets them back.
  auto installed = install(request);
  if (!installed) return installed.error();
  pending.drop();
  return Enrolled{std::move(*answer), std::move(*installed)};
}

void print(const Enrolled& e, const NodeFiles& files, bool as_json) {
  if (as_json) {
    std::cout << json{{"enrolled", true},
                      {"username", e.installed.state.username},
                      {"jid", e.installed.state.jid},
                      {"group", e.installed.state.group},
                      {"overlay", e.installed.state.overlay},
                      {"serial", e.answer.serial},
                      {"not_before", e.answer.not_before},
                      {"not_after", e.answer.not_after},
                      {"renew_after", e.answer.renew_after},
                      {"login",
                       {{"ok", true},
                        {"mechanism", e.installed.login.mechanism},
                        {"bound_jid", e.installed.login.bound_jid},
                        {"elapsed_ms", e.installed.login.elapsed.count()}}},
                      {"files",
                       {{"key", files.key_file()},
                        {"certificate", files.cert_file()},
                        {"root", files.root_file()},
                        {"state", files.state_file()},
                        {"evio_config", e.installed.state.evio_config}}}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << "enrolled " << e.installed.state.jid << " in group " << e.installed.state.group << " (overlay " << e.installed.state.overlay
            << ")\n"
            << "  serial      " << e.answer.serial << "\n"
            << "  valid until " << e.answer.not_after << " (renew after " << e.answer.renew_after << ")\n"
            << "  login       verified: SASL " << e.installed.login.mechanism << " bound " << e.installed.login.bound_jid << " in "
            << e.installed.login.elapsed.count() << " ms\n"
            << "  key         " << files.key_file().string() << "\n"
            << "  certificate " << files.cert_file().string() << "\n"
            << "  EdgeVPN     " << e.installed.state.evio_config << " (Signal.Overlays." << e.installed.state.overlay << ")\n";
}

}  // namespace

ExitCode run_enroll(EnrollOptions options) {
  auto completed = complete(std::move(options));
  auto result = completed ? enroll(*completed) : Outcome<Enrolled>(completed.error());
  const bool as_json = completed ? completed->json : options.json;
  if (result) {
    print(*result, NodeFiles(completed->state_dir), as_json);
    if (!completed->install_root) return exit_ok;
    const auto dir = completed->system_trust_dir.empty() ? default_system_trust_dir
                                                         : std::filesystem::path(completed->system_trust_dir);
    auto trusted = install_system_root(result->answer.root, dir);
    if (!trusted) {
      std::cerr << "evpn-agent: warning: the node is enrolled and its enrollment is kept, but the CA root was not "
                   "installed in the system trust store: "
                << trusted.error().detail << "\n";
      return exit_local;
    }
    std::cerr << "evpn-agent: installed the CA root in the system trust store as " << trusted->string() << "\n";
    return exit_ok;
  }
  return report_failure(result.error(), as_json, "enrolled", "enrollment");
}

}  // namespace evpn::agent
