#include "agent/install.hpp"

#include "agent/evio_config.hpp"
#include "agent/test_hook.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/log.hpp"

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

// Writes the EdgeVPN config and returns a function that puts the previous content back.
Result<std::function<void()>> write_evio_config(const std::string& file, const std::string& overlay,
                                                const SignalEntry& entry) {
  auto previous = fs::read_file(file);
  if (auto r = update_config_file(file, overlay, entry); !r) return r.error();
  return std::function<void()>([file, previous = std::move(previous)] {
    std::error_code ec;
    if (previous)
      (void)fs::write_file_atomic(file, *previous, std::filesystem::status(file, ec).permissions());
    else
      std::filesystem::remove(file, ec);
  });
}

}  // namespace

Outcome<Installed> install(const InstallRequest& request) {
  const auto& answer = *request.answer;
  if (auto r = check_answer(answer, *request.key, *request.root, request.username); !r)
    return Failure{exit_refused, r.error()};

  std::string chain_pem = answer.certificate;
  for (const auto& pem : answer.chain) chain_pem += pem;
  NodeFiles files(request.state_dir);
  auto staged = files.stage(request.key->to_pem(), chain_pem, answer.root, answer.serial);
  if (!staged) return Failure{exit_local, staged.error()};
  test_step("staged");

  LoginOptions login;
  login.host = answer.xmpp.host;
  login.port = answer.xmpp.port;
  login.jid = answer.node.jid;
  login.cert_file = staged->cert_file;
  login.key_file = staged->key_file;
  login.ca_file = request.xmpp_ca.empty() ? staged->root_file : std::filesystem::path(request.xmpp_ca);
  login.deadline = request.login_deadline;
  spdlog::info("verifying SASL EXTERNAL login as {} at {}:{}", login.jid, login.host, login.port);
  LoginReport report = verify_login(login);
  if (!report.ok()) {
    files.discard(*staged);
    const Error& e = *report.error;
    return Failure{e.code == Errc::unavailable ? exit_transient : exit_login,
                   with_context(e, "the new certificate was not put in place")};
  }
  test_step("logged-in");

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

  // The config is written before the pair goes live and restored if that fails, so that a
  // failure leaves both as they were. It names <state>/current, which the commit swaps.
  std::function<void()> restore_config = [] {};
  if (request.update_evio_config) {
    SignalEntry entry{answer.xmpp.host, std::to_string(answer.xmpp.port), files.current_dir().string(), "node.crt",
                      "node.key"};
    auto written = write_evio_config(state.evio_config, answer.node.overlay, entry);
    if (!written) {
      files.discard(*staged);
      return Failure{exit_local, written.error()};
    }
    restore_config = std::move(*written);
    test_step("config-written");
  }
  if (auto r = files.commit(*staged, state); !r) {
    files.discard(*staged);
    restore_config();
    return Failure{exit_local, r.error()};
  }
  test_step("committed");
  return Installed{std::move(report), std::move(state)};
}

}  // namespace evpn::agent
