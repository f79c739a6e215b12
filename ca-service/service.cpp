#include "ca-service/service.hpp"

#include "ca-service/api/metrics_server.hpp"
#include "ca-service/api/routes.hpp"
#include "ca-service/metrics/metered_directory.hpp"
#include "ca-service/api/server.hpp"
#include "common/fs/atomic_file.hpp"
#include "ca-service/log.hpp"

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

namespace evpn::ca {

Result<signing::Signer> load_signer(const CaPaths& paths) {
  auto key_pem = fs::read_file(paths.ca_key());
  if (!key_pem) return with_context(key_pem.error(), "run `evpn-ca init --dir " + paths.dir.string() + "` first");
  auto key = crypto::Key::from_pem(*key_pem);
  if (!key) return with_context(key.error(), paths.ca_key().string());
  auto cert_pem = fs::read_file(paths.ca_cert());
  if (!cert_pem) return cert_pem.error();
  auto root = crypto::Certificate::from_pem(*cert_pem);
  if (!root) return with_context(root.error(), paths.ca_cert().string());
  return signing::Signer(std::move(*key), std::move(*root));
}

Result<store::Store> open_store(const CaPaths& paths) {
  auto config = load_config(paths.config());
  if (!config) return config.error();
  return open_store(paths, *config);
}

Result<store::Store> open_store(const CaPaths& paths, const CaConfig& config) {
  if (config.store.empty() && !std::filesystem::exists(paths.store()))
    return fail(Errc::not_found,
                paths.store().string() + " does not exist: is --dir a CA directory made by `evpn-ca init`?");
  auto location = store_location(paths, config);
  if (!location) return location.error();
  return store::Store::open(*location);
}

Result<store::StoreLocation> store_location(const CaPaths& paths, const CaConfig& config) {
  if (config.store.empty()) return store::StoreLocation{paths.store().string()};
  store::StoreLocation location{config.store};
  if (!config.store_password_file.empty()) {
    auto text = fs::read_file(config.store_password_file, 4096);
    if (!text) return with_context(text.error(), "store_password_file");
    std::string password = std::move(*text);
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    if (password.empty())
      return fail(Errc::invalid_request, "store_password_file " + config.store_password_file + " is empty");
    location.password = std::move(password);
  }
  return location;
}

authority::CanaryTarget canary_target(const CaConfig& config, const CaPaths& paths) {
  return {config.xmpp, config.directory.type, paths.ca_cert()};
}

Service::Service(CaPaths paths, CaConfig config, signing::Signer signer, store::Store store,
                 std::unique_ptr<xmpp::Directory> directory)
    : paths_(std::move(paths)),
      config_(std::move(config)),
      signer_(std::move(signer)),
      store_(std::move(store)),
      directory_(std::move(directory)),
      authority_(store_, signer_, *directory_, config_.xmpp, config_.reserved_usernames) {}

Result<std::unique_ptr<Service>> Service::open(const CaPaths& paths, metrics::Metrics* metrics) {
  auto config = load_config(paths.config());
  if (!config) return config.error();
  auto signer = load_signer(paths);
  if (!signer) return signer.error();
  auto store = open_store(paths, *config);
  if (!store) return store.error();
  auto directory = xmpp::make_directory(config->directory, config->xmpp.domain);
  if (!directory) return directory.error();
  if (metrics) {
    *directory = std::make_unique<metrics::MeteredDirectory>(std::move(*directory), *metrics,
                                                                  std::string(to_string(config->directory.type)));
    store->observe_commits([metrics](auto took, std::size_t writes) { metrics->store_commit(took, writes); });
  }
  return std::make_unique<Service>(paths, std::move(*config), std::move(*signer), std::move(*store),
                                   std::move(*directory));
}

Result<void> Service::write_crl() {
  using std::filesystem::perms;
  auto der = authority_.crl(now_seconds());
  if (!der) return der.error();
  return fs::write_file_atomic(paths_.crl(), *der,
                               perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

void Service::maintain() {
  if (auto failed = authority_.enforce_lockouts(now_seconds()); !failed)
    spdlog::warn("cannot enforce the directory lockouts: {}", failed.error().detail);
  if (const auto now = std::chrono::steady_clock::now(); !next_canary_ || now >= *next_canary_) {
    check_revocation();
    next_canary_ = now + canary_interval;
  }
  std::error_code ec;
  const auto written = std::filesystem::last_write_time(paths_.crl(), ec);
  if (!ec && std::filesystem::file_time_type::clock::now() - written < std::chrono::hours(24)) return;
  if (auto r = write_crl(); !r) spdlog::warn("cannot write {}: {}", paths_.crl().string(), r.error().detail);
}

void Service::check_revocation() {
  authority::CanaryReport report;
  if (config_.directory.type == DirectoryType::none) {
    report.summary = "no XMPP directory is configured (type none): evpn-ca locks no node out, so lock revoked "
                     "nodes out on the XMPP server yourself";
    spdlog::info("revocation canary: not run: {}", report.summary);
    return canary_.record(report, now_seconds());
  }
  std::erase_if(canaries_left_, [this](const std::string& username) {
    auto removed = authority::remove_canary(*directory_, username);
    if (removed) spdlog::info("revocation canary: removed {}, which an earlier run had left behind", username);
    return removed.has_value();
  });
  report = authority::run_canary(*directory_, signer_, canary_target(config_, paths_), evpn::xmpp::verify_login,
                                 now_seconds());
  if (!report.left_behind.empty()) canaries_left_.push_back(report.left_behind);
  // Every other wrong item too (a foreign CA's certificate accepted, a canary left behind), once.
  for (const auto& item : report.items)
    if (item.ok == false && item.detail != report.summary)
      spdlog::error("revocation canary {}: {}: {}", report.jid, item.name, item.detail);
  switch (report.revocation) {
    case authority::Effectiveness::effective: spdlog::info("revocation canary: {}", report.summary); break;
    case authority::Effectiveness::not_effective: spdlog::error("revocation canary: {}", report.summary); break;
    case authority::Effectiveness::unknown:
      spdlog::warn("revocation canary: cannot tell whether revocation is effective: {}", report.summary);
      break;
  }
  canary_.record(report, now_seconds());
}

Result<void> serve(const ServeOptions& o) {
  metrics::Metrics metrics;
  auto service = Service::open(CaPaths{o.dir}, &metrics);
  if (!service) return service.error();
  Service& ca = **service;
  auto listen = parse_listen(ca.config().listen);
  if (!listen) return listen.error();
  std::unique_ptr<api::MetricsServer> metrics_server;
  if (!ca.config().metrics_listen.empty()) {
    // validate_config checked it when the config was loaded.
    auto address = parse_listen(ca.config().metrics_listen);
    if (!address) return address.error();
    api::MetricsServerOptions options;
    options.host = address->host;
    options.port = address->port;
    auto started = api::MetricsServer::start(options, [&metrics, &ca] { return metrics.expose(ca.store(), now_seconds()); });
    if (!started) return started.error();
    metrics_server = std::move(*started);
  }
  auto tls_cert = fs::read_file(ca.paths().tls_cert());
  if (!tls_cert) return tls_cert.error();
  auto tls_key = fs::read_file(ca.paths().tls_key());
  if (!tls_key) return tls_key.error();

  api::Routes routes(ca.authority(), ca.config().rate_limits, ca.shared_store(), &metrics, &ca.revocation_canary());
  api::ServerOptions server;
  server.host = listen->host;
  server.port = listen->port;
  server.cert_chain_pem = std::move(*tls_cert);
  server.key_pem = std::move(*tls_key);
  server.client_ca_pem = ca.signer().root().to_pem();
  server.max_connections = ca.config().max_connections;
  server.max_connections_per_address = ca.config().max_connections_per_address;
  // More workers than cores: a worker waits on the XMPP directory (tens of milliseconds per
  // enrollment) and for its batch's commit, and only waiting writers can share a commit.
  server.worker_threads = std::max(16u, 4 * std::thread::hardware_concurrency());
  spdlog::info("CA root fingerprint {}; XMPP domain {}; directory {}", ca.signer().root().fingerprint_sha256(),
               ca.config().xmpp.domain, to_string(ca.config().directory.type));
  // Before the port opens, so that /healthz never answers without a probe.
  routes.probe_health();
  // A thread of its own rather than the request workers: a directory that is down makes each
  // lockout attempt wait for its full timeout. Stopped and joined when serve returns.
  std::jthread maintenance([&ca, &routes, &metrics](std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any stopped;
    std::unique_lock lock(mutex);
    for (;;) {
      ca.maintain();
      using authority::Effectiveness;
      const auto revocation = ca.revocation_canary().effective();
      metrics.revocation_effective(revocation == Effectiveness::unknown
                                       ? std::nullopt
                                       : std::optional<bool>(revocation == Effectiveness::effective));
      if (stopped.wait_for(lock, stop, maintenance_interval, [&stop] { return stop.stop_requested(); })) return;
      routes.probe_health();
    }
  });
  return api::serve(server, [&](const api::Request& req, const api::RequestContext& ctx) {
    return routes.handle(req, ctx);
  });
}

}  // namespace evpn::ca
