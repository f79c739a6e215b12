#include "agent/renew.hpp"

#include "agent/ca_client.hpp"
#include "agent/enroll.hpp"
#include "agent/install.hpp"
#include "agent/node_files.hpp"
#include "agent/pending_key.hpp"
#include "agent/renewal.hpp"
#include "common/crypto/csr.hpp"
#include "common/fs/atomic_file.hpp"
#include "agent/log.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

namespace evpn::agent {

namespace {

using nlohmann::json;

// Beyond this difference from the CA's clock, the node's own clock is not trusted.
constexpr std::chrono::seconds tolerated_skew{5 * 60};
constexpr std::chrono::seconds first_retry{2};
constexpr std::chrono::seconds max_retry{60};

// What the node has now: its state, current pair and pinned root.
struct Current {
  NodeState state;
  std::string cert_pem;
  std::string key_pem;
  crypto::Certificate cert;
  crypto::Certificate root;
};

Outcome<Current> load_current(const NodeFiles& files) {
  auto state = files.load_state();
  if (!state) return Failure{exit_local, state.error()};
  if (!*state)
    return Failure{exit_usage, fail(Errc::not_found, "this node is not enrolled (no " + files.state_file().string() +
                                                          "): run evpn-agent enroll first")};
  auto cert_pem = fs::read_file(files.cert_file());
  auto key_pem = fs::read_file(files.key_file());
  auto root_pem = fs::read_file(files.root_file());
  for (const auto* r : {&cert_pem, &key_pem, &root_pem})
    if (!*r) return Failure{exit_local, with_context(r->error(), "the node's current files")};
  auto cert = crypto::Certificate::from_pem(*cert_pem);
  auto root = crypto::Certificate::from_pem(*root_pem);
  if (!cert || !root) return Failure{exit_local, fail(Errc::io, "the node's certificate or root does not parse")};
  return Current{std::move(**state), std::move(*cert_pem), std::move(*key_pem), std::move(*cert), std::move(*root)};
}

// The time to decide with, and a note when it is the CA's rather than the node's.
struct Clock {
  TimePoint now;
  std::string note;
};

// The node's clock is "clearly off" when it reads a time before the certificate was issued, or
// one at which the certificate looks expired: then the CA's clock decides.
Clock decide_time(const Current& current, const CaClient& ca) {
  const TimePoint local = now_seconds();
  const bool suspicious = local < current.cert.not_before() + protocol::issuance_backdate || local >= current.cert.not_after();
  if (!suspicious) return {local, ""};
  auto ca_time = ca.server_time();
  if (!ca_time) return {local, "the CA's clock could not be read (" + ca_time.error().detail + "); using ours"};
  const auto skew = local - *ca_time;
  if (std::chrono::abs(skew) <= tolerated_skew) return {local, ""};
  return {*ca_time, "this node's clock is off by " + std::to_string(skew.count()) + " s; using the CA's time " +
                        to_rfc3339(*ca_time)};
}

Activation activation(const RenewOptions& o) {
  Activation how;
  how.state_dir = o.state_dir;
  how.xmpp_ca = o.xmpp_ca;
  how.login_deadline = o.timeout;
  how.keep_on_failure = true;
  return how;
}

// The renewal's new key, kept until the renewal is final (see PendingKey): after a lost answer the
// CA has already made the new certificate current and answers a repeat of the same request (same
// current certificate, same new key) with it.
PendingKey renewal_key(const RenewOptions& o) { return PendingKey(std::filesystem::path(o.state_dir) / ".renew-key"); }

// One renewal attempt: new key (or the one of a renewal whose answer was lost), CSR, mutual-TLS
// request, then the checked install.
Outcome<Installed> renew_once(const Current& current, const RenewOptions& o) {
  auto key_type = crypto::parse_key_type(current.state.key_type);
  if (!key_type) return Failure{exit_local, with_context(key_type.error(), "state.json")};
  const PendingKey pending = renewal_key(o);
  auto key = pending.get(*key_type);
  // A key left by a renewal that completed but was killed before dropping it is the current one.
  if (key && current.cert.matches(*key)) {
    pending.drop();
    key = pending.get(*key_type);
  }
  if (!key) return Failure{exit_local, key.error()};
  auto csr = crypto::Csr::create(*key, current.state.username);
  if (!csr) return Failure{exit_local, csr.error()};
  auto ca = CaClient::with_root(current.state.ca_url, current.root.clone(),
                                current.cert_pem, current.key_pem, o.timeout);
  if (!ca) return Failure{exit_usage, ca.error()};
  auto answer = ca->renew({csr->to_pem()});
  if (!answer) {
    pending.refused(answer.error());
    // The CA no longer accepts this certificate (expired, superseded, revoked): only a new
    // enrollment helps.
    if (answer.error().code == Errc::unauthorized) return Failure{exit_reenroll, answer.error()};
    return Failure{exit_for_ca(answer.error()), answer.error()};
  }
  InstallRequest request;
  request.answer = &*answer;
  request.key = &*key;
  request.root = &current.root;
  request.username = current.state.username;
  request.activation = activation(o);
  request.state = current.state;
  return install(request);
}

// A renewal interrupted after the CA issued its certificate (killed, or its login failed) leaves a
// newer pair behind. The CA has already made that one the node's current certificate and would
// refuse the old one, so such a pair is finished rather than asked for again. Returns it with
// its certificate; removes staging leftovers that are of no use.
struct Interrupted {
  StagedPair pair;
  crypto::Certificate cert;
};

std::optional<Interrupted> find_interrupted(const Current& current, const NodeFiles& files) {
  for (StagedPair pair : files.pending()) {
    auto key_pem = fs::read_file(pair.key_file);
    auto cert_pem = fs::read_file(pair.cert_file);
    auto key = key_pem ? crypto::Key::from_pem(*key_pem) : Result<crypto::Key>(key_pem.error());
    auto cert = cert_pem ? crypto::Certificate::from_pem(*cert_pem) : Result<crypto::Certificate>(cert_pem.error());
    std::vector<crypto::Certificate> roots;
    roots.push_back(current.root.clone());
    const bool newer = key && cert && cert->matches(*key) && cert->common_name() == current.state.username &&
                       cert->serial_hex() != current.cert.serial_hex() &&
                       cert->not_before() >= current.cert.not_before() &&
                       crypto::verify_chain(*cert, roots, now_seconds(), X509_PURPOSE_SSL_CLIENT);
    if (newer) {
      pair.serial = cert->serial_hex();
      return Interrupted{std::move(pair), std::move(*cert)};
    }
    // Older pairs in certs-* are the previous ones, kept on purpose; staging leftovers go.
    if (pair.dir.filename().string().starts_with(".staging-")) files.discard(pair);
  }
  return std::nullopt;
}

// One attempt: finish an interrupted renewal if there is one, else renew afresh.
Outcome<Installed> attempt(const Current& current, const RenewOptions& o) {
  NodeFiles files(o.state_dir);
  auto interrupted = find_interrupted(current, files);
  Outcome<Installed> outcome = [&]() -> Outcome<Installed> {
    if (!interrupted) return renew_once(current, o);
    log::info("finishing an interrupted renewal: certificate " + interrupted->pair.serial);
    NodeState state = current.state;
    state.serial = interrupted->pair.serial;
    state.not_after = to_rfc3339(interrupted->cert.not_after());
    state.renew_after = to_rfc3339(renew_after(interrupted->cert));
    return activate(interrupted->pair, std::move(state), activation(o));
  }();
  if (outcome) renewal_key(o).drop();
  return outcome;
}

// Retries transient failures with capped exponential backoff and jitter, within o.retry_for.
Outcome<Installed> renew_with_retries(const Current& current, const RenewOptions& o, int& attempts) {
  const auto give_up = std::chrono::steady_clock::now() + o.retry_for;
  std::mt19937 rng(std::random_device{}());
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(first_retry);
  for (attempts = 1;; ++attempts) {
    auto result = attempt(current, o);
    if (result || result.error().code != exit_transient) return result;
    const auto jitter = std::chrono::milliseconds(std::uniform_int_distribution<long>(0, delay.count() / 2)(rng));
    if (std::chrono::steady_clock::now() + delay + jitter > give_up) return result;
    log::warn("renewal attempt " + std::to_string(attempts) + " failed (" + result.error().error.detail +
              "); retrying in " + std::to_string((delay + jitter).count()) + " ms");
    std::this_thread::sleep_for(delay + jitter);
    delay = std::min(delay * 2, std::chrono::duration_cast<std::chrono::milliseconds>(max_retry));
  }
}

// Runs the operator's hook with the new files in its environment; its failure is reported but
// does not undo a renewal that is already in place.
Result<void> run_hook(const std::string& command, const NodeFiles& files, const NodeState& state) {
  for (const auto& [name, value] : {std::pair<const char*, std::string>{"EVPN_CERT_FILE", files.cert_file()},
                                    {"EVPN_KEY_FILE", files.key_file()},
                                    {"EVPN_ROOT_FILE", files.root_file()},
                                    {"EVPN_SERIAL", state.serial},
                                    {"EVPN_USERNAME", state.username},
                                    {"EVPN_NOT_AFTER", state.not_after}})
    ::setenv(name, value.c_str(), 1);
  const int status = std::system(command.c_str());
  if (status != 0)
    return fail(Errc::io, "the --on-renew command failed (status " + std::to_string(status) + "): " + command);
  return {};
}

// Renewal is impossible without a token: enroll again with the agent config's token, same name.
ExitCode enroll_again(const Current& current, const RenewOptions& o) {
  EnrollOptions e;
  e.config_file = o.config_file;
  e.ca_url = current.state.ca_url;
  e.fingerprint = current.state.fingerprint;
  e.username = current.state.username;
  e.state_dir = o.state_dir;
  e.evio_config = current.state.evio_config;
  e.xmpp_ca = o.xmpp_ca;
  e.key_type = current.state.key_type;
  e.timeout = o.timeout;
  e.json = o.json;
  return run_enroll(e);
}

bool config_has_token(const std::string& config_file) {
  if (config_file.empty()) return false;
  auto text = fs::read_file(config_file, 64 * 1024);
  if (!text) return false;
  json doc = json::parse(*text, nullptr, false);
  return doc.is_object() && doc.contains("token") && doc["token"].is_string() && !doc["token"].get<std::string>().empty();
}

void report(bool as_json, const json& result, const std::string& text) {
  if (as_json)
    std::cout << result.dump(2) << "\n";
  else
    std::cout << text << "\n";
}

}  // namespace

ExitCode run_renew(const RenewOptions& o) {
  NodeFiles files(o.state_dir);
  auto current = load_current(files);
  auto failed = [&](const Failure& f) { return report_failure(f, o.json, "renewed", "renewal"); };
  if (!current) return failed(current.error());

  const bool interrupted = find_interrupted(*current, files).has_value();
  // A renewal that sent its request and lost the answer may have made the current certificate
  // superseded at the CA: it is finished now, due or not.
  const bool pending = std::filesystem::exists(renewal_key(o).file());
  auto probe = CaClient::with_root(current->state.ca_url, current->root.clone(),
                                   current->cert_pem, current->key_pem, o.timeout);
  if (!probe) return failed(Failure{exit_usage, probe.error()});
  const Clock clock = decide_time(*current, *probe);
  if (!clock.note.empty()) std::cerr << "evpn-agent: " << clock.note << "\n";
  const TimePoint due_at = renew_after(current->cert);
  json result{{"username", current->state.username},
              {"serial", current->cert.serial_hex()},
              {"not_after", to_rfc3339(current->cert.not_after())},
              {"renew_after", to_rfc3339(due_at)},
              {"now", to_rfc3339(clock.now)},
              {"clock", clock.note.empty() ? "local" : "ca"}};

  if (clock.now >= current->cert.not_after() && !interrupted) {
    if (config_has_token(o.config_file)) {
      std::cerr << "evpn-agent: the certificate expired at " << to_rfc3339(current->cert.not_after())
                << "; enrolling again with the token in " << o.config_file << "\n";
      return enroll_again(*current, o);
    }
    return failed(Failure{exit_reenroll, fail(Errc::unauthorized, "the certificate expired at " +
                                                                      to_rfc3339(current->cert.not_after()) +
                                                                      ": it cannot renew itself; enroll again with a "
                                                                      "token (or put one in the agent config)")});
  }
  if (clock.now < due_at && !o.force && !interrupted && !pending) {
    result["renewed"] = false;
    result["reason"] = "not due";
    report(o.json, result, "not due: " + current->state.jid + " renews after " + to_rfc3339(due_at));
    return exit_ok;
  }

  int attempts = 0;
  auto installed = renew_with_retries(*current, o, attempts);
  if (!installed) return failed(installed.error());
  const NodeState& state = installed->state;
  result.update({{"renewed", true},
                 {"reason", interrupted || pending ? "resumed" : clock.now < due_at ? "forced" : "due"},
                 {"previous_serial", current->cert.serial_hex()},
                 {"serial", state.serial},
                 {"not_after", state.not_after},
                 {"renew_after", state.renew_after},
                 {"attempts", attempts},
                 {"login", {{"ok", true}, {"bound_jid", installed->login.bound_jid},
                            {"elapsed_ms", installed->login.elapsed.count()}}}});
  if (!o.on_renew.empty()) {
    if (auto r = run_hook(o.on_renew, files, state); !r) {
      result["hook_error"] = r.error().detail;
      report(o.json, result, "renewed " + state.jid + " (serial " + state.serial + "), but " + r.error().detail);
      return exit_local;
    }
  }
  report(o.json, result,
         "renewed " + state.jid + ": serial " + state.serial + ", valid until " + state.not_after +
             " (login verified in " + std::to_string(installed->login.elapsed.count()) + " ms)");
  return exit_ok;
}

}  // namespace evpn::agent
