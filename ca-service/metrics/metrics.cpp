#include "ca-service/metrics/metrics.hpp"

#include "ca-service/authority/authority.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/log.hpp"

#include <algorithm>
#include <array>

namespace evpn::ca::metrics {

namespace {

// Every Errc, so that each result series exists from the start: a rate or increase() over a series
// that appears with its first failure would miss that failure.
constexpr std::array all_errors{Errc::invalid_request, Errc::unauthorized, Errc::forbidden,    Errc::not_found,
                                Errc::conflict,        Errc::account_exists, Errc::unavailable, Errc::rate_limited,
                                Errc::io,              Errc::internal};

constexpr std::array node_states{authority::NodeState::active, authority::NodeState::expiring,
                                  authority::NodeState::expired, authority::NodeState::revoked};

// Directory calls take milliseconds on loopback and up to the directory timeout (5 s by default).
const std::vector<double> directory_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// A commit is one fsync: well under a millisecond on a fast SSD, tens of milliseconds on a slow disk.
const std::vector<double> commit_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
const std::vector<double> batch_bounds{1, 2, 4, 8, 16, 32, 64, 128};

Family<Counter>& with_every_result(Family<Counter>& family) {
  family.with({"ok"});
  for (Errc code : all_errors) family.with({to_string(code)});
  return family;
}

std::string result(std::optional<Errc> refused) { return refused ? to_string(*refused) : "ok"; }

}  // namespace

Metrics::Metrics()
    : enrollments_(with_every_result(registry_.counter(
          "evpn_ca_enrollments_total", "Enrollment requests answered, by result (ok or the error code).", {"result"}))),
      renewals_(with_every_result(registry_.counter(
          "evpn_ca_renewals_total", "Renewal requests answered, by result (ok or the error code).", {"result"}))),
      revocations_(registry_
                       .counter("evpn_ca_revocations_total",
                                "Certificates revoked, by any evpn-ca process (read from the store).")
                       .with({})),
      refusals_(registry_.counter("evpn_ca_refusals_total", "Requests the API refused, by error code.", {"code"})),
      directory_seconds_(registry_.histogram("evpn_ca_directory_request_seconds",
                                             "Time of each XMPP directory call, by backend and command.",
                                             {"backend", "command"}, directory_bounds)),
      directory_failures_(registry_.counter(
          "evpn_ca_directory_failures_total",
          "XMPP directory calls that failed (server down or refusing), by backend and command.", {"backend", "command"})),
      commit_seconds_(registry_
                          .histogram("evpn_ca_store_commit_seconds",
                                     "Time of each group commit of the store, from BEGIN to COMMIT.", {}, commit_bounds)
                          .with({})),
      commit_writes_(registry_
                         .histogram("evpn_ca_store_commit_batch_size",
                                    "Writes (enrollments, renewals) per group commit of the store.", {}, batch_bounds)
                         .with({})),
      tokens_active_(registry_
                         .gauge("evpn_ca_tokens_active", "Tokens that are unrevoked, unexpired and have uses left.")
                         .with({})),
      certificates_(registry_.gauge("evpn_ca_certificates",
                                    "Nodes by the state of their current certificate (expiring: in its renewal window).",
                                    {"state"})),
      lockouts_pending_(registry_
                            .gauge("evpn_ca_lockouts_pending",
                                   "Directory lockouts that revocations queued and that have not succeeded yet.")
                            .with({})),
      revocation_effective_(registry_
                                .gauge("evpn_ca_revocation_effective",
                                       "Whether a revoked certificate is refused by the XMPP server: 1 yes, 0 no, "
                                       "-1 not known yet.")
                                .with({})),
      scrape_error_(registry_
                        .gauge("evpn_ca_store_scrape_error",
                               "1 when the last scrape could not read the store (its gauges keep older values).")
                        .with({})) {
  for (Errc code : all_errors) refusals_.with({to_string(code)});
  for (auto state : node_states) certificates_.with({std::string(to_string(state))});
  revocation_effective_.set(-1);
}

void Metrics::enrollment(std::optional<Errc> refused) { enrollments_.with({result(refused)}).add(); }
void Metrics::renewal(std::optional<Errc> refused) { renewals_.with({result(refused)}).add(); }
void Metrics::refusal(Errc code) { refusals_.with({to_string(code)}).add(); }

void Metrics::directory_request(const std::string& backend, const std::string& command,
                                std::chrono::duration<double> took, bool failed) {
  directory_seconds_.with({backend, command}).observe(took.count());
  auto& failures = directory_failures_.with({backend, command});
  if (failed) failures.add();
}

void Metrics::store_commit(std::chrono::duration<double> took, std::size_t writes) {
  commit_seconds_.observe(took.count());
  commit_writes_.observe(static_cast<double>(writes));
}

void Metrics::revocation_effective(std::optional<bool> effective) {
  revocation_effective_.set(effective ? (*effective ? 1 : 0) : -1);
}

std::string Metrics::expose(store::Store& store, TimePoint now) {
  // Read at scrape rather than counted here: `evpn-ca revoke` and `evpn-ca token` run as processes
  // of their own, so only the store knows them all. One scrape at a time (the metrics listener
  // answers in turn), each a few queries over tables of one row per token, node and revocation.
  auto tokens = store.list_tokens();
  auto nodes = store.list_nodes();
  auto revocations = store.list_revocations();
  auto lockouts = store.pending_lockouts();
  const bool read = tokens && nodes && revocations && lockouts;
  if (read) {
    tokens_active_.set(static_cast<double>(std::count_if(tokens->begin(), tokens->end(), [&](const auto& t) {
      return enrollment::token_state(t, now) == enrollment::TokenState::active;
    })));
    std::map<authority::NodeState, int> by_state;
    for (const auto& node : *nodes) ++by_state[authority::node_state(node, now)];
    for (auto state : node_states) certificates_.with({std::string(to_string(state))}).set(by_state[state]);
    // Revocations are never deleted, so their number only grows, as a counter must.
    revocations_.raise_to(revocations->size());
    lockouts_pending_.set(static_cast<double>(lockouts->size()));
  } else {
    spdlog::warn("metrics: cannot read the store; its gauges keep their last values");
  }
  scrape_error_.set(read ? 0 : 1);
  return registry_.expose();
}

}  // namespace evpn::ca::metrics
