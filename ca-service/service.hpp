#pragma once
// An initialised CA directory opened for work: its config, CA key, store, XMPP directory and the
// authority over them; and `serve`, which runs the HTTPS API and the maintenance on top of it.

#include "ca-service/app.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/config.hpp"
#include "ca-service/metrics/metrics.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/result.hpp"

#include <chrono>
#include <memory>

namespace evpn::ca {

// How often `serve` re-asserts the lockouts, retries the queued ones and probes its store and
// directory for /healthz.
inline constexpr std::chrono::seconds maintenance_interval{30};

// The CA key and root of an initialised directory.
Result<signing::Signer> load_signer(const CaPaths& paths);

// The store of an initialised CA directory (its config.json says which); unlike Store::open,
// never creates an SQLite file.
Result<store::Store> open_store(const CaPaths& paths);
Result<store::Store> open_store(const CaPaths& paths, const CaConfig& config);
// Where config.json's store is, with PostgreSQL's password read from store_password_file.
Result<store::StoreLocation> store_location(const CaPaths& paths, const CaConfig& config);

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
  // DIR/crl.der once a day so that its nextUpdate (at least half a week on) never passes while it runs.
  void maintain();

 private:
  CaPaths paths_;
  CaConfig config_;
  signing::Signer signer_;
  store::Store store_;
  std::unique_ptr<xmpp::Directory> directory_;
  authority::Authority authority_;
};

// `evpn-ca serve`: the HTTPS API and the maintenance thread, until SIGINT or SIGTERM.
Result<void> serve(const ServeOptions& options);

}  // namespace evpn::ca
