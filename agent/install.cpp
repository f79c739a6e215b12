#include "agent/install.hpp"

#include "agent/evio_config.hpp"
#include "agent/test_hook.hpp"
#include "agent/log.hpp"

namespace evpn::agent {

namespace {

// The one certificate that the PEM text `pem` of the field `field` holds. The text must be exactly
// that certificate's PEM encoding, as Certificate::to_pem() writes it (which is how the CA encodes
// every certificate it sends): no second certificate, no text around it, no other line endings.
// So what the agent writes is byte for byte what it checked.
Result<crypto::Certificate> exactly_one(const std::string& pem, const std::string& field) {
  auto cert = crypto::Certificate::from_pem(pem);
  if (!cert) return fail(Errc::invalid_request, "the CA's " + field + " is not a PEM certificate: " + cert.error().detail);
  if (cert->to_pem() != pem)
    return fail(Errc::invalid_request, "the CA's " + field +
                                           " is not exactly one PEM certificate (it carries more text or "
                                           "another encoding); nothing was written");
  return cert;
}

Error refused(const std::string& why) { return fail(Errc::invalid_request, why + "; nothing was written"); }

}  // namespace

Result<CheckedAnswer> check_answer(const protocol::EnrollmentResult& answer, const crypto::Key& key,
                                   const crypto::Certificate& pinned, const std::string& username, TimePoint now) {
  auto cert = exactly_one(answer.certificate, "certificate");
  if (!cert) return cert.error();
  if (!cert->matches(key)) return refused("the CA returned a certificate for another key");
  if (answer.root != pinned.to_pem())
    return refused("the CA's root is not byte for byte the pinned root (fingerprint " + pinned.fingerprint_sha256() +
                   ")");
  std::vector<crypto::Certificate> anchors;
  anchors.push_back(pinned.clone());
  std::vector<crypto::Certificate> chain;
  for (std::size_t i = 0; i < answer.chain.size(); ++i) {
    const std::string field = "chain[" + std::to_string(i) + "]";
    auto ca = exactly_one(answer.chain[i], field);
    if (!ca) return ca.error();
    if (!ca->is_ca()) return refused("the CA's " + field + " is not a CA certificate (no basicConstraints CA:TRUE)");
    chain.push_back(std::move(*ca));
  }
  for (std::size_t i = 0; i < chain.size(); ++i)
    if (auto r = crypto::verify_chain(chain[i], anchors, now, X509_PURPOSE_ANY, chain); !r)
      return refused("the CA's chain[" + std::to_string(i) + "] does not chain to the pinned root (" + r.error().detail +
                     ")");
  if (auto r = crypto::verify_chain(*cert, anchors, now, X509_PURPOSE_SSL_CLIENT, chain); !r)
    return refused("the CA's certificate does not chain to the pinned root (" + r.error().detail + ")");
  const std::string jid = username + "@" + answer.xmpp.domain;
  const auto addrs = cert->xmpp_addrs();
  if (cert->common_name() != username || addrs.size() != 1 || addrs.front() != jid || answer.node.jid != jid)
    return refused("the CA's certificate is not for " + jid + " (CN " + cert->common_name() + ")");
  std::string chain_pem = answer.certificate;
  for (const auto& pem : answer.chain) chain_pem += pem;
  return CheckedAnswer{std::move(chain_pem), answer.root};
}

Outcome<Installed> install(const InstallRequest& request) {
  // The CA has committed and answered; nothing is written yet. A kill here is a lost answer.
  test_step("answered");
  const auto& answer = *request.answer;
  auto checked = check_answer(answer, *request.key, *request.root, request.username, now_seconds());
  if (!checked) return Failure{exit_refused, checked.error()};

  NodeFiles files(request.activation.state_dir);
  auto staged = files.stage(request.key->to_pem(), checked->chain_pem, checked->root_pem, answer.serial);
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
  xmpp::LoginOptions login;
  login.host = state.xmpp_host;
  login.port = state.xmpp_port;
  login.jid = state.jid;
  login.cert_file = pair.cert_file;
  login.key_file = pair.key_file;
  login.ca_file = how.xmpp_ca.empty() ? pair.root_file : std::filesystem::path(how.xmpp_ca);
  login.deadline = how.login_deadline;
  login.trace = log::debug_sink();
  log::info("verifying SASL EXTERNAL login as " + login.jid + " at " + login.host + ":" + std::to_string(login.port));
  xmpp::LoginReport report = xmpp::verify_login(login);
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
