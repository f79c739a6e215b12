#pragma once
// An initialised CA directory opened for work: its config, CA key, store, XMPP directory and the
// authority over them; and `serve`, which runs the HTTPS API and the maintenance on top of it.

#include "ca-service/app.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/authority/revocation_canary.hpp"
#include "ca-service/config.hpp"
#include "ca-service/metrics/metrics.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/result.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evpn::ca {

// How often `serve` re-asserts the lockouts, retries the queued ones and probes its store and
// directory for /healthz.
inline constexpr std::chrono::seconds maintenance_interval{30};
// How often `serve` runs the revocation canary, from its start. The rule it proves only changes
// with the XMPP server's configuration (an edit and a reload or restart), so ten minutes bound how
// long such a change goes unnoticed, while each run costs the server only an account, a lockout
// and three logins, and its log one refused session.
inline constexpr std::chrono::minutes canary_interval{10};

// The CA key and root of an initialised directory.
Result<signing::Signer> load_signer(const CaPaths& paths);

// The store of an initialised CA directory (its config.json says which); unlike Store::open,
// never creates an SQLite file.
Result<store::Store> open_store(const CaPaths& paths);
Result<store::Store> open_store(const CaPaths& paths, const CaConfig& config);
// Where config.json's store is, with PostgreSQL's password read from store_password_file.
Result<store::StoreLocation> store_location(const CaPaths& paths, const CaConfig& config);

// Where the revocation canary logs in: the nodes' XMPP endpoint, trusting the CA's root for the
// server's certificate, as the agent does by default (`evpn-ca server-cert` issues it).
authority::CanaryTarget canary_target(const CaConfig& config, const CaPaths& paths);

// The parts of an initialised CA directory that `serve` and `revoke` work with. The authority
// refers to the other parts, so a Service stays where it was made.
class Service {
 public:
  // With `metrics`, every directory call and store commit is counted in it (it must outlive the
  // Service).
  static Result<std::unique_ptr<Service>> open(const CaPaths& paths, metrics::Metrics* metrics = nullptr);

  Service(CaPaths paths, CaConfig config, signing::Signer signer, store::Store store,
          std::unique_ptr<xmpp::Directory> directory);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const CaPaths& paths() const { return paths_; }
  const CaConfig& config() const { return config_; }
  const signing::Signer& signer() const { return signer_; }
  authority::Authority& authority() { return authority_; }
  // The store, when replicas share it (PostgreSQL); nullptr for the SQLite file of a single `serve`.
  store::Store* shared_store() { return config_.store.empty() ? nullptr : &store_; }
  store::Store& store() { return store_; }

  // Signs a CRL of every revocation now and writes it to DIR/crl.der.
  Result<void> write_crl();
  // What `serve` does every maintenance_interval, besides probing for /healthz: enforces the
  // lockout of every revoked node (the queued ones and those done before), and rewrites
  // DIR/crl.der once a day so that its nextUpdate (at least half a week on) never passes while it
  // runs; and runs the revocation canary at the first call and then every canary_interval.
  void maintain();
  // Runs the revocation canary now against the XMPP server, logs its verdict (an error when the
  // revocation is not effective) and keeps it in revocation_canary().
  void check_revocation();
  const authority::RevocationCanary& revocation_canary() const { return canary_; }

 private:
  CaPaths paths_;
  CaConfig config_;
  signing::Signer signer_;
  store::Store store_;
  std::unique_ptr<xmpp::Directory> directory_;
  authority::Authority authority_;
  authority::RevocationCanary canary_;
  std::optional<std::chrono::steady_clock::time_point> next_canary_;  // nullopt: not run yet
  std::vector<std::string> canaries_left_;  // canary accounts a run could not remove
};

// `evpn-ca serve`: the HTTPS API and the maintenance thread, until SIGINT or SIGTERM.
Result<void> serve(const ServeOptions& options);

}  // namespace evpn::ca
