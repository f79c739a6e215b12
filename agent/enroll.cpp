#include "agent/enroll.hpp"

#include "agent/ca_client.hpp"
#include "agent/evio_config.hpp"
#include "agent/node_files.hpp"
#include "agent/xmpp_login.hpp"
#include "common/crypto/csr.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/log.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace evpn::agent {

namespace {

using nlohmann::json;

// An error together with the exit code it ends the command with.
struct Failure {
  ExitCode code;
  Error error;
};

template <class T>
using Outcome = boost::system::result<T, Failure>;

// How a refusal by the CA or the network ends the command: only "try again later" is transient.
ExitCode exit_for_ca(const Error& e) {
  switch (e.code) {
    case Errc::unavailable: return exit_transient;
    case Errc::io: return exit_local;
    case Errc::internal: return exit_transient;  // a CA-side fault; nothing on the node is wrong
    default: return exit_refused;
  }
}

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

// The CA's answer must be exactly what this node asked for, issued under the pinned root.
Result<crypto::Certificate> check_answer(const protocol::EnrollmentResult& answer, const crypto::Key& key,
                                         const CaClient& ca, const std::string& username) {
  auto cert = crypto::Certificate::from_pem(answer.certificate);
  if (!cert) return with_context(cert.error(), "the CA's certificate");
  if (!cert->matches(key)) return fail(Errc::invalid_request, "the CA returned a certificate for another key");
  auto root = crypto::Certificate::from_pem(answer.root);
  if (!root || root->fingerprint_sha256() != ca.root().fingerprint_sha256())
    return fail(Errc::invalid_request, "the CA returned a root other than the pinned one");
  std::vector<crypto::Certificate> anchors;
  anchors.push_back(std::move(*root));
  if (auto r = crypto::verify_chain(*cert, anchors, now_seconds(), X509_PURPOSE_SSL_CLIENT); !r)
    return with_context(r.error(), "the CA's certificate");
  const std::string jid = username + "@" + answer.xmpp.domain;
  const auto addrs = cert->xmpp_addrs();
  if (cert->common_name() != username || addrs.size() != 1 || addrs.front() != jid || answer.node.jid != jid)
    return fail(Errc::invalid_request, "the CA's certificate is not for " + jid + " (CN " + cert->common_name() + ")");
  return std::move(*cert);
}

struct Enrolled {
  protocol::EnrollmentResult answer;
  LoginReport login;
  NodeState state;
};

Outcome<Enrolled> enroll(const EnrollOptions& o) {
  auto key_type = crypto::parse_key_type(o.key_type);
  if (!key_type) return Failure{exit_usage, key_type.error()};
  // Refuse a broken EdgeVPN config before the token is spent, not after.
  if (auto r = check_config_file(o.evio_config); !r) return Failure{exit_local, r.error()};

  spdlog::info("pinning the CA root at {}", o.ca_url);
  auto ca = CaClient::pin(o.ca_url, o.fingerprint, o.timeout);
  if (!ca) return Failure{exit_for_ca(ca.error()), ca.error()};

  auto key = crypto::Key::generate(*key_type);
  if (!key) return Failure{exit_local, key.error()};
  auto csr = crypto::Csr::create(*key, o.username);
  if (!csr) return Failure{exit_local, csr.error()};
  spdlog::info("requesting a certificate for {} ({} key)", o.username, o.key_type);
  auto answer = ca->enroll({o.token, csr->to_pem()});
  if (!answer) return Failure{exit_for_ca(answer.error()), answer.error()};
  auto cert = check_answer(*answer, *key, *ca, o.username);
  if (!cert) return Failure{exit_refused, cert.error()};

  std::string chain_pem = answer->certificate;
  for (const auto& pem : answer->chain) chain_pem += pem;
  NodeFiles files(o.state_dir);
  auto staged = files.stage(key->to_pem(), chain_pem, answer->root, answer->serial);
  if (!staged) return Failure{exit_local, staged.error()};

  LoginOptions login;
  login.host = answer->xmpp.host;
  login.port = answer->xmpp.port;
  login.jid = answer->node.jid;
  login.cert_file = staged->cert_file;
  login.key_file = staged->key_file;
  login.ca_file = o.xmpp_ca.empty() ? staged->root_file : std::filesystem::path(o.xmpp_ca);
  login.deadline = o.timeout;
  spdlog::info("verifying SASL EXTERNAL login as {} at {}:{}", login.jid, login.host, login.port);
  LoginReport report = verify_login(login);
  if (!report.ok()) {
    files.discard(*staged);
    const Error& e = *report.error;
    return Failure{e.code == Errc::unavailable ? exit_transient : exit_login,
                   with_context(e, "the new certificate was not put in place")};
  }

  NodeState state{o.ca_url,      o.fingerprint,          o.username,           answer->node.jid,
                  answer->node.group, answer->node.overlay, answer->xmpp.host, answer->xmpp.port,
                  answer->xmpp.domain, o.evio_config,       o.key_type,          answer->serial,
                  answer->not_after,   answer->renew_after};
  SignalEntry entry{answer->xmpp.host, std::to_string(answer->xmpp.port), files.current_dir().string(), "node.crt",
                    "node.key"};
  // The config is written before the pair goes live and restored if that fails, so that a
  // failure leaves both as they were.
  auto previous_config = fs::read_file(o.evio_config);
  if (auto r = update_config_file(o.evio_config, answer->node.overlay, entry); !r) {
    files.discard(*staged);
    return Failure{exit_local, r.error()};
  }
  if (auto r = files.commit(*staged, state); !r) {
    files.discard(*staged);
    std::error_code ec;
    if (previous_config)
      (void)fs::write_file_atomic(o.evio_config, *previous_config,
                                  std::filesystem::status(o.evio_config, ec).permissions());
    else
      std::filesystem::remove(o.evio_config, ec);
    return Failure{exit_local, r.error()};
  }
  return Enrolled{std::move(*answer), std::move(report), std::move(state)};
}

void print(const Enrolled& e, const NodeFiles& files, bool as_json) {
  if (as_json) {
    std::cout << json{{"enrolled", true},
                      {"username", e.state.username},
                      {"jid", e.state.jid},
                      {"group", e.state.group},
                      {"overlay", e.state.overlay},
                      {"serial", e.answer.serial},
                      {"not_before", e.answer.not_before},
                      {"not_after", e.answer.not_after},
                      {"renew_after", e.answer.renew_after},
                      {"login",
                       {{"ok", true},
                        {"mechanism", e.login.mechanism},
                        {"bound_jid", e.login.bound_jid},
                        {"elapsed_ms", e.login.elapsed.count()}}},
                      {"files",
                       {{"key", files.key_file()},
                        {"certificate", files.cert_file()},
                        {"root", files.root_file()},
                        {"state", files.state_file()},
                        {"evio_config", e.state.evio_config}}}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << "enrolled " << e.state.jid << " in group " << e.state.group << " (overlay " << e.state.overlay
            << ")\n"
            << "  serial      " << e.answer.serial << "\n"
            << "  valid until " << e.answer.not_after << " (renew after " << e.answer.renew_after << ")\n"
            << "  login       verified: SASL " << e.login.mechanism << " bound " << e.login.bound_jid << " in "
            << e.login.elapsed.count() << " ms\n"
            << "  key         " << files.key_file().string() << "\n"
            << "  certificate " << files.cert_file().string() << "\n"
            << "  EdgeVPN     " << e.state.evio_config << " (Signal.Overlays." << e.state.overlay << ")\n";
}

}  // namespace

ExitCode run_enroll(EnrollOptions options) {
  auto completed = complete(std::move(options));
  auto result = completed ? enroll(*completed) : Outcome<Enrolled>(completed.error());
  const bool as_json = completed ? completed->json : options.json;
  if (result) {
    print(*result, NodeFiles(completed->state_dir), as_json);
    return exit_ok;
  }
  const Failure& f = result.error();
  if (as_json)
    std::cout << json{{"enrolled", false}, {"error", to_string(f.error.code)}, {"message", f.error.detail},
                      {"exit_code", static_cast<int>(f.code)}}
                     .dump(2)
              << "\n";
  std::cerr << "evpn-agent: enrollment failed: " << f.error.detail << "\n";
  return f.code;
}

}  // namespace evpn::agent
