#pragma once
// The metrics of `evpn-ca serve`: what its requests, directory calls and store commits did (counted
// as they happen) and what the store holds (read when scraped). Only counts and closed sets of
// label values: no username, serial or token id ever becomes a label.

#include "ca-service/metrics/registry.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace evpn::ca::store {
class Store;
}  // namespace evpn::ca::store

namespace evpn::ca::metrics {

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One enroll or renew request answered: issued (nullopt, result "ok") or refused with the code.
  void enrollment(std::optional<Errc> refused);
  void renewal(std::optional<Errc> refused);
  // Any request the API refused, by error code.
  void refusal(Errc code);
  // One call of the XMPP directory; `failed` when the server did not do it (down, or refused it for
  // a reason other than "exists already").
  void directory_request(const std::string& backend, const std::string& command, std::chrono::duration<double> took,
                         bool failed);
  // One group commit of the store: how long its transaction took and how many writes it held.
  void store_commit(std::chrono::duration<double> took, std::size_t writes);
  // Whether revocations take effect on the XMPP server (the revocation canary): true, false, or
  // unknown (nullopt, the start value, exposed as -1).
  void revocation_effective(std::optional<bool> effective);

  // Every metric in the Prometheus text format, after reading tokens, certificates, revocations and
  // pending lockouts from `store` at `now`. A store that does not answer leaves those at their last
  // values and sets evpn_ca_store_scrape_error to 1.
  std::string expose(store::Store& store, TimePoint now);

  const Registry& registry() const noexcept { return registry_; }

 private:
  Registry registry_;
  Family<Counter>& enrollments_;
  Family<Counter>& renewals_;
  Counter& revocations_;
  Family<Counter>& refusals_;
  Family<Histogram>& directory_seconds_;
  Family<Counter>& directory_failures_;
  Histogram& commit_seconds_;
  Histogram& commit_writes_;
  Gauge& tokens_active_;
  Family<Gauge>& certificates_;
  Gauge& lockouts_pending_;
  Gauge& revocation_effective_;
  Gauge& scrape_error_;
};

}  // namespace evpn::ca::metrics
