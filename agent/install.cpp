#include "agent/install.hpp"

#include "agent/evio_config.hpp"
#include "agent/test_hook.hpp"
#include "agent/log.hpp"

namespace evpn::agent {

namespace {

// The CA's answer must be exactly what this node asked for, issued under the pinned root.
Result<void> check_answer(const protocol::EnrollmentResult& answer, const crypto::Key& key,
                          const crypto::Certificate& pinned, const std::string& username) {
  auto cert = crypto::Certificate::from_pem(answer.certificate);
  if (!cert) return with_context(cert.error(), "the CA's certificate");
  if (!cert->matches(key)) return fail(Errc::invalid_request, "the CA returned a certificate for another key");
  auto root = crypto::Certificate::from_pem(answer.root);
  if (!root || root->fingerprint_sha256() != pinned.fingerprint_sha256())
    return fail(Errc::invalid_request, "the CA returned a root other than the pinned one");
  std::vector<crypto::Certificate> anchors;
  anchors.push_back(std::move(*root));
  if (auto r = crypto::verify_chain(*cert, anchors, now_seconds(), X509_PURPOSE_SSL_CLIENT); !r)
    return with_context(r.error(), "the CA's certificate");
  const std::string jid = username + "@" + answer.xmpp.domain;
  const auto addrs = cert->xmpp_addrs();
  if (cert->common_name() != username || addrs.size() != 1 || addrs.front() != jid || answer.node.jid != jid)
    return fail(Errc::invalid_request, "the CA's certificate is not for " + jid + " (CN " + cert->common_name() + ")");
  return {};
}

}  // namespace

Outcome<Installed> install(const InstallRequest& request) {
  const auto& answer = *request.answer;
  if (auto r = check_answer(answer, *request.key, *request.root, request.username); !r)
    return Failure{exit_refused, r.error()};

  std::string chain_pem = answer.certificate;
  for (const auto& pem : answer.chain) chain_pem += pem;
  NodeFiles files(request.activation.state_dir);
  auto staged = files.stage(request.key->to_pem(), chain_pem, answer.root, answer.serial);
  if (!staged) return Failure{exit_local, staged.error()};
  test_step("staged");

  NodeState state = request.state;
  state.username = request.username;
  state.jid = answer.node.jid;
  state.group = answer.node.group;
  state.overlay = answer.node.overlay;
  state.xmpp_host = answer.xmpp.host;
  state.xmpp_port = answer.xmpp.port;
  state.xmpp_domain = answer.xmpp.domain;
  state.serial = answer.serial;
  state.not_after = answer.not_after;
  state.renew_after = answer.renew_after;
  return activate(*staged, std::move(state), request.activation);
}

Outcome<Installed> activate(const StagedPair& pair, NodeState state, const Activation& how) {
  NodeFiles files(how.state_dir);
  LoginOptions login;
  login.host = state.xmpp_host;
  login.port = state.xmpp_port;
  login.jid = state.jid;
  login.cert_file = pair.cert_file;
  login.key_file = pair.key_file;
  login.ca_file = how.xmpp_ca.empty() ? pair.root_file : std::filesystem::path(how.xmpp_ca);
  login.deadline = how.login_deadline;
  log::info("verifying SASL EXTERNAL login as " + login.jid + " at " + login.host + ":" + std::to_string(login.port));
  LoginReport report = verify_login(login);
  if (!report.ok()) {
    if (!how.keep_on_failure) files.discard(pair);
    const Error& e = *report.error;
    return Failure{e.code == Errc::unavailable ? exit_transient : exit_login,
                   with_context(e, how.keep_on_failure
                                       ? "the new certificate is kept aside and will be tried again on the next run"
                                       : "the new certificate was not put in place")};
  }
  test_step("logged-in");

  if (auto r = files.commit(pair, state); !r) {
    if (!how.keep_on_failure) files.discard(pair);
    return Failure{exit_local, r.error()};
  }
  test_step("committed");
  SignalEntry entry{state.xmpp_host, std::to_string(state.xmpp_port), files.current_dir().string(), "node.crt",
                    "node.key"};
  if (auto r = update_config_file(state.evio_config, state.overlay, entry); !r)
    return Failure{exit_local, with_context(r.error(), "the new certificate is in place, but EdgeVPN's config could "
                                                       "not be updated (`evpn-agent check` reports it)")};
  test_step("config-written");
  return Installed{std::move(report), std::move(state)};
}

}  // namespace evpn::agent
