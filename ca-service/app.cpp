#include "ca-service/app.hpp"

#include "ca-service/api/routes.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/config.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "ca-service/xmpp/openfire_admin.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/log.hpp"
#include "common/net/url.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <stop_token>
#include <thread>

namespace evpn::ca {

namespace {

using std::filesystem::perms;
constexpr auto private_file = perms::owner_read | perms::owner_write;
constexpr auto public_file = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
constexpr std::chrono::seconds tls_lifetime{825LL * 86400};
constexpr std::chrono::seconds maintenance_interval{30};
using nlohmann::json;

int report(const Error& e) {
  std::cerr << "evpn-ca: " << e.detail << "\n";
  return 1;
}

// The CA key and root of an initialised directory.
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

// Issues a key and server certificate for `names` and writes PREFIX.crt, PREFIX.key, PREFIX.pem,
// and PREFIX.p12 (alias: the first name) when a PKCS#12 password is given.
Result<void> write_server_pair(const signing::Signer& signer, const std::vector<std::string>& names,
                               std::chrono::seconds lifetime, const std::filesystem::path& prefix,
                               const std::optional<std::string>& pkcs12_password = std::nullopt) {
  auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
  if (!key) return key.error();
  auto cert = signer.issue_server(key->get(), names, lifetime, now_seconds());
  if (!cert) return cert.error();
  const std::string cert_pem = cert->to_pem(), key_pem = key->to_pem();
  auto with_suffix = [&](const char* suffix) { return std::filesystem::path(prefix.string() + suffix); };
  if (auto r = fs::write_file_atomic(with_suffix(".key"), key_pem, private_file); !r) return r;
  if (auto r = fs::write_file_atomic(with_suffix(".crt"), cert_pem, public_file); !r) return r;
  if (auto r = fs::write_file_atomic(with_suffix(".pem"), cert_pem + key_pem, private_file); !r) return r;
  if (!pkcs12_password) return {};
  auto p12 = xmpp::make_pkcs12(*key, *cert, signer.root(), names.front(), *pkcs12_password);
  if (!p12) return p12.error();
  return fs::write_file_atomic(with_suffix(".p12"), *p12, private_file);
}

Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen) {
  auto url = net::parse_url("https://" + listen);
  if (!url || listen.find(':') == std::string::npos)
    return fail(Errc::invalid_request, "--listen must be HOST:PORT, e.g. 127.0.0.1:8443, not '" + listen + "'");
  return std::pair{url->host, url->port};
}

Result<void> init(const InitOptions& o) {
  const CaPaths paths{o.dir};
  if (std::filesystem::exists(paths.ca_key()))
    return fail(Errc::conflict, paths.dir.string() + " already holds a CA; choose another --dir");
  auto key_type = crypto::parse_key_type(o.key_type);
  if (!key_type) return key_type.error();
  if (o.directory != "ejabberd" && o.directory != "openfire" && o.directory != "none")
    return fail(Errc::invalid_request, "--directory must be ejabberd, openfire or none");
  if (o.xmpp_port <= 0 || o.xmpp_port > 65535) return fail(Errc::invalid_request, "--xmpp-port must be 1-65535");
  auto listen = parse_listen(o.listen);
  if (!listen) return listen.error();

  CaConfig config;
  config.xmpp = {o.xmpp_domain, o.xmpp_host.empty() ? o.xmpp_domain : o.xmpp_host,
                 static_cast<std::uint16_t>(o.xmpp_port)};
  config.directory.type = o.directory;
  config.directory.url = o.directory == "none"       ? ""
                         : !o.directory_url.empty()  ? o.directory_url
                         : o.directory == "openfire" ? "http://127.0.0.1:9090/plugins/restapi/v1"
                                                     : "http://127.0.0.1:5280/api";
  config.directory.secret_file = o.directory_secret_file;
  config.directory.secret_env = o.directory_secret_env;
  config.directory.auth = o.directory_auth;
  config.directory.username = o.directory_user;
  if (o.directory == "openfire") {
    if (o.directory_auth != "secret" && o.directory_auth != "basic")
      return fail(Errc::invalid_request, "--directory-auth must be secret or basic");
    if (o.directory_auth == "basic" && o.directory_user.empty())
      return fail(Errc::invalid_request, "--directory-auth basic needs --directory-user (an Openfire admin)");
  }
  if (o.directory == "ejabberd" && !xmpp::is_account_jid(o.directory_user))
    return fail(Errc::invalid_request,
                "the ejabberd directory needs --directory-user, the full JID of the ejabberd account evpn-ca calls "
                "the API as (e.g. evpn-ca@" + o.xmpp_domain + "; create it with ejabberdctl register)");
  if (o.directory != "none" && o.directory_secret_file.empty() == o.directory_secret_env.empty())
    return fail(Errc::invalid_request,
                "the " + o.directory + " directory needs exactly one of --directory-secret-file and "
                "--directory-secret-env (" +
                    (o.directory == "ejabberd" ? "the password of --directory-user"
                                               : "the REST API secret; for basic, the admin password") + ")");
  config.listen = o.listen;
  config.key_type = o.key_type;
  config.hostnames = o.hostnames;
  if (config.hostnames.empty()) {
    config.hostnames = {"localhost", "127.0.0.1"};
    if (listen->first != "localhost" && listen->first != "127.0.0.1" && listen->first != "0.0.0.0")
      config.hostnames.insert(config.hostnames.begin(), listen->first);
  }
  if (config.directory.type != "none") {
    if (auto url = net::parse_url(config.directory.url); !url) return with_context(url.error(), "--directory-url");
  }

  std::error_code ec;
  std::filesystem::create_directories(paths.tls_dir(), ec);
  if (ec) return fail(Errc::io, "cannot create " + paths.tls_dir().string() + ": " + ec.message());
  std::filesystem::permissions(paths.dir, perms::owner_all, ec);

  auto key = crypto::Key::generate(*key_type);
  if (!key) return key.error();
  auto root = signing::Signer::create_root(*key, "EdgeVPN enrollment CA for " + o.xmpp_domain, now_seconds());
  if (!root) return root.error();
  if (auto r = fs::write_file_atomic(paths.ca_key(), key->to_pem(), private_file); !r) return r;
  if (auto r = fs::write_file_atomic(paths.ca_cert(), root->to_pem(), public_file); !r) return r;
  signing::Signer signer(std::move(*key), std::move(*root));
  auto tls_prefix = paths.tls_dir() / "server";
  if (auto r = write_server_pair(signer, config.hostnames, tls_lifetime, tls_prefix); !r) return r;
  if (auto r = save_config(paths.config(), config); !r) return r;
  if (auto store = store::Store::open(paths.store()); !store) return store.error();
  // Token hashes and the issuance history are nobody else's business.
  std::filesystem::permissions(paths.store(), private_file, ec);

  std::cerr << "evpn-ca: initialised " << paths.dir.string() << " for XMPP domain " << o.xmpp_domain
            << "; give nodes the CA URL https://" << config.hostnames.front() << ":" << listen->second
            << " and this root fingerprint:\n";
  std::cout << signer.root().fingerprint_sha256() << "\n";
  return {};
}

// The parts of an initialised CA directory that `serve` and `revoke` work with.
struct Service {
  CaConfig config;
  signing::Signer signer;
  store::Store store;
  std::unique_ptr<xmpp::Directory> directory;
  authority::Authority authority{store, signer, *directory, config.xmpp, config.reserved_usernames};
};

Result<std::unique_ptr<Service>> open_service(const CaPaths& paths) {
  auto config = load_config(paths.config());
  if (!config) return config.error();
  auto signer = load_signer(paths);
  if (!signer) return signer.error();
  auto store = store::Store::open(paths.store());
  if (!store) return store.error();
  auto directory = xmpp::make_directory(config->directory, config->xmpp.domain);
  if (!directory) return directory.error();
  return std::make_unique<Service>(std::move(*config), std::move(*signer), std::move(*store), std::move(*directory));
}

// The store of an initialised CA directory; unlike Store::open, never creates one.
Result<store::Store> open_store(const CaPaths& paths) {
  if (!std::filesystem::exists(paths.store()))
    return fail(Errc::not_found,
                paths.store().string() + " does not exist: is --dir a CA directory made by `evpn-ca init`?");
  return store::Store::open(paths.store());
}

Result<void> write_crl(authority::Authority& authority, const CaPaths& paths) {
  auto der = authority.crl(now_seconds());
  if (!der) return der.error();
  return fs::write_file_atomic(paths.crl(), *der, public_file);
}

// What `serve` does every maintenance_interval, besides probing the store and directory for
// /healthz: enforces the lockout of every revoked node (the queued ones and those done before),
// and rewrites DIR/crl.der once a day so that its nextUpdate (at least half a week on) never
// passes while it runs.
void maintain(authority::Authority& authority, const CaPaths& paths) {
  if (auto failed = authority.enforce_lockouts(now_seconds()); !failed)
    spdlog::warn("cannot enforce the directory lockouts: {}", failed.error().detail);
  std::error_code ec;
  const auto written = std::filesystem::last_write_time(paths.crl(), ec);
  if (!ec && std::filesystem::file_time_type::clock::now() - written < std::chrono::hours(24)) return;
  if (auto r = write_crl(authority, paths); !r)
    spdlog::warn("cannot write {}: {}", paths.crl().string(), r.error().detail);
}

Result<void> serve(const ServeOptions& o) {
  const CaPaths paths{o.dir};
  auto service = open_service(paths);
  if (!service) return service.error();
  Service& ca = **service;
  auto listen = parse_listen(ca.config.listen);
  if (!listen) return listen.error();
  auto tls_cert = fs::read_file(paths.tls_cert());
  if (!tls_cert) return tls_cert.error();
  auto tls_key = fs::read_file(paths.tls_key());
  if (!tls_key) return tls_key.error();

  api::Routes routes(ca.authority, ca.config.rate_limits);
  api::ServerOptions server;
  server.host = listen->first;
  server.port = listen->second;
  server.cert_chain_pem = std::move(*tls_cert);
  server.key_pem = std::move(*tls_key);
  server.client_ca_pem = ca.signer.root().to_pem();
  server.max_connections = ca.config.max_connections;
  server.max_connections_per_address = ca.config.max_connections_per_address;
  // More workers than cores: a worker waits on the XMPP directory (tens of milliseconds per
  // enrollment) and for its batch's commit, and only waiting writers can share a commit.
  server.worker_threads = std::max(16u, 4 * std::thread::hardware_concurrency());
  spdlog::info("CA root fingerprint {}; XMPP domain {}; directory {}", ca.signer.root().fingerprint_sha256(),
               ca.config.xmpp.domain, ca.config.directory.type);
  // Before the port opens, so that /healthz never answers without a probe.
  routes.probe_health();
  // A thread of its own rather than the request workers: a directory that is down makes each
  // lockout attempt wait for its full timeout. Stopped and joined when serve returns.
  std::jthread maintenance([&ca, &paths, &routes](std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any stopped;
    std::unique_lock lock(mutex);
    for (;;) {
      maintain(ca.authority, paths);
      if (stopped.wait_for(lock, stop, maintenance_interval, [&stop] { return stop.stop_requested(); })) return;
      routes.probe_health();
    }
  });
  return api::serve(server, [&](const api::Request& req, const api::RequestContext& ctx) {
    return routes.handle(req, ctx);
  });
}

Result<void> fingerprint(const FingerprintOptions& o) {
  auto pem = fs::read_file(CaPaths{o.dir}.ca_cert());
  if (!pem) return with_context(pem.error(), "is --dir a CA directory made by `evpn-ca init`?");
  auto root = crypto::Certificate::from_pem(*pem);
  if (!root) return root.error();
  std::cout << root->fingerprint_sha256() << "\n";
  return {};
}

Result<void> group_add(const GroupAddOptions& o) {
  auto lifetime = parse_duration(o.lifetime);
  if (!lifetime) return with_context(lifetime.error(), "--lifetime");
  if (*lifetime < std::chrono::minutes(1)) return fail(Errc::invalid_request, "--lifetime must be at least 1m");
  if (auto r = enrollment::check_username(o.name); !r)
    return fail(Errc::invalid_request, "group names follow the username rules: " + r.error().detail);
  if (o.overlay.empty() || o.overlay.size() > 64 ||
      o.overlay.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
          std::string::npos)
    return fail(Errc::invalid_request, "--overlay must be 1-64 letters, digits, '_' or '-' (e.g. 101000F)");
  auto store = store::Store::open(CaPaths{o.dir}.store());
  if (!store) return store.error();
  if (auto r = store->add_group({o.name, o.overlay, *lifetime}); !r) return r;
  std::cerr << "evpn-ca: group " << o.name << " -> overlay " << o.overlay << ", certificates valid " << o.lifetime
            << "\n";
  return {};
}

Result<void> token_create(const TokenCreateOptions& o) {
  auto ttl = parse_duration(o.ttl);
  if (!ttl) return with_context(ttl.error(), "--ttl");
  if (o.uses < 1 || o.uses > 100000) return fail(Errc::invalid_request, "--uses must be 1-100000");
  if (o.adopt_existing && o.username.empty())
    return fail(Errc::invalid_request, "--adopt-existing needs --username: an existing account is adopted only by "
                                       "a token made for that one name");
  const CaPaths paths{o.dir};
  auto config = load_config(paths.config());
  if (!config) return config.error();
  std::optional<std::string> username;
  if (!o.username.empty()) {
    if (auto r = enrollment::check_username(o.username); !r) return with_context(r.error(), "--username");
    if (auto r = enrollment::check_not_reserved(o.username, config->reserved_usernames); !r) return r;
    username = o.username;
  }
  auto store = open_store(paths);
  if (!store) return store.error();
  auto group = store->find_group(o.group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::not_found, "no group '" + o.group + "': create it with `evpn-ca group add`");
  auto token = enrollment::make_token(o.group, username, *ttl, o.uses, now_seconds());
  token.record.adopt_existing = o.adopt_existing;
  if (auto r = store->add_token(token.record); !r) return r;
  std::cerr << "evpn-ca: token " << token.record.id << " for group " << o.group
            << (username ? " and username " + *username : std::string(" (any username)")) << ", " << o.uses
            << " use(s), expires " << to_rfc3339(token.record.expires_at)
            << (o.adopt_existing ? "; it may adopt the existing XMPP account " + *username : std::string()) << "\n";
  std::cout << token.text << "\n";
  return {};
}

Result<void> server_cert(const ServerCertOptions& o) {
  if (o.names.empty()) return fail(Errc::invalid_request, "give at least one --name");
  auto lifetime = parse_duration(o.lifetime);
  if (!lifetime) return with_context(lifetime.error(), "--lifetime");
  auto signer = load_signer(CaPaths{o.dir});
  if (!signer) return signer.error();
  const auto pkcs12_password = o.pkcs12 ? std::optional(o.pkcs12_password) : std::nullopt;
  if (auto r = write_server_pair(*signer, o.names, *lifetime, o.out, pkcs12_password); !r) return r;
  std::cerr << "evpn-ca: wrote " << o.out << ".crt, " << o.out << ".key and " << o.out
            << ".pem (certificate then key, for ejabberd's certfiles)\n";
  if (o.pkcs12)
    std::cerr << "evpn-ca: wrote " << o.out << ".p12 (PKCS#12, alias " << o.names.front()
              << "). To make Openfire present it, on the Openfire host:\n"
              << xmpp::keystore_commands(std::filesystem::absolute(o.out + ".p12"), o.names.front(), o.pkcs12_password,
                                        o.openfire_home)
              << "  (or import " << o.out << ".crt and " << o.out
              << ".key in the admin console: TLS Certificates > identity store > import)\n";
  return {};
}

Result<void> revoke(const RevokeOptions& o) {
  const CaPaths paths{o.dir};
  auto service = open_service(paths);
  if (!service) return service.error();
  Service& ca = **service;
  auto revoked = ca.authority.revoke({o.username, o.serial, o.reason}, now_seconds());
  if (!revoked) return revoked.error();
  const auto& r = revoked->revocation;
  std::cerr << "evpn-ca: revoked certificate " << r.serial << " of " << r.username << " (" << r.reason << ")\n";
  if (auto written = write_crl(ca.authority, paths); !written)
    return with_context(written.error(), "the revocation is recorded but " + paths.crl().string() + " was not written");
  std::cerr << "evpn-ca: wrote " << paths.crl().string() << "\n";
  if (!r.lockout_queued)
    std::cerr << "evpn-ca: it is not the current certificate of " << r.username
              << ", so the node keeps its access; the XMPP server checks no CRL and accepts " << r.serial
              << " until it expires (" << to_rfc3339(r.not_after) << "): to lock the node out, run "
              << "`evpn-ca revoke --dir " << o.dir << " --username " << r.username << "`\n";
  else if (revoked->lockout_error)
    std::cerr << "evpn-ca: WARNING: " << r.username << " is not locked out in the XMPP directory yet ("
              << revoked->lockout_error->detail << "); the lockout stays queued, `evpn-ca serve` retries it every "
              << maintenance_interval.count() << " s and `evpn-ca nodes` shows it as pending\n";
  else if (ca.config.directory.type == "none")
    std::cerr << "evpn-ca: no XMPP directory is configured (type none): lock " << r.username
              << " out on the XMPP server yourself\n";
  else
    std::cerr << "evpn-ca: " << r.username << " can no longer log in to the XMPP server and its sessions were ended\n";
  std::cout << r.serial << "\n";
  return {};
}

// Prints `rows` as left-aligned columns; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i)
      line += i + 1 < row.size() ? row[i] + std::string(widths[i] - row[i].size() + 2, ' ') : row[i];
    std::cout << line << "\n";
  }
}

// What the list commands print: `out` with --json, else `rows` as a table.
void print_list(const ListOptions& o, const json& out, const std::vector<std::vector<std::string>>& rows) {
  if (o.json)
    std::cout << out.dump(2) << "\n";
  else
    print_table(rows);
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

Result<void> nodes(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto nodes = store->list_nodes();
  if (!nodes) return nodes.error();
  const auto now = now_seconds();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"USERNAME", "GROUP", "OVERLAY", "SERIAL", "NOT AFTER", "STATE"}};
  for (const auto& n : *nodes) {
    const std::string state = authority::node_state(n, now);
    json entry{{"username", n.username},
               {"group", n.group},
               {"overlay", n.overlay},
               {"serial", n.current_serial},
               {"not_before", to_rfc3339(n.not_before)},
               {"not_after", to_rfc3339(n.not_after)},
               {"state", state},
               {"directory_step_pending", n.pending_lockout.has_value()}};
    std::string shown = state;
    if (n.revoked_at) {
      entry["revoked_at"] = to_rfc3339(*n.revoked_at);
      entry["revocation_reason"] = n.revocation_reason;
    }
    if (n.pending_lockout) {
      entry["directory_error"] = n.pending_lockout->last_error;
      shown += ", directory step pending" +
               (n.pending_lockout->last_error.empty() ? "" : " (" + n.pending_lockout->last_error + ")");
    }
    out.push_back(std::move(entry));
    rows.push_back({n.username, n.group, n.overlay, n.current_serial, to_rfc3339(n.not_after), shown});
  }
  print_list(o, out, rows);
  return {};
}

Result<void> token_list(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto tokens = store->list_tokens();
  if (!tokens) return tokens.error();
  const auto now = now_seconds();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"ID", "GROUP", "USERNAME", "USES LEFT", "EXPIRES", "CREATED", "STATE"}};
  // The secret's hash stays in the store: it is all an attacker would need to test guesses offline.
  for (const auto& t : *tokens) {
    const std::string state = t.revoked_at        ? "revoked"
                              : t.expires_at <= now ? "expired"
                              : t.uses_left <= 0    ? "used up"
                                                    : "active";
    out.push_back({{"id", t.id},
                   {"group", t.group},
                   {"username", t.username ? json(*t.username) : json(nullptr)},
                   {"uses_left", t.uses_left},
                   {"expires_at", to_rfc3339(t.expires_at)},
                   {"created_at", to_rfc3339(t.created_at)},
                   {"revoked_at", t.revoked_at ? json(to_rfc3339(*t.revoked_at)) : json(nullptr)},
                   {"state", state}});
    rows.push_back({t.id, t.group, t.username.value_or("(any)"), std::to_string(t.uses_left),
                    to_rfc3339(t.expires_at), to_rfc3339(t.created_at), state});
  }
  print_list(o, out, rows);
  return {};
}

Result<void> token_revoke(const TokenRevokeOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  if (auto r = store->revoke_token(o.id, now_seconds()); !r) return r;
  std::cerr << "evpn-ca: token " << o.id << " revoked: enrollments with it are refused\n";
  return {};
}

Result<void> audit(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto entries = store->list_audit();
  if (!entries) return entries.error();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"TIME", "ACTION", "USERNAME", "SERIAL", "TOKEN", "DETAIL"}};
  for (const auto& e : *entries) {
    out.push_back({{"at", to_rfc3339(e.at)},
                   {"action", e.action},
                   {"username", e.username},
                   {"serial", e.serial},
                   {"token_id", e.token_id},
                   {"detail", e.detail}});
    rows.push_back(
        {to_rfc3339(e.at), e.action, or_dash(e.username), or_dash(e.serial), or_dash(e.token_id), e.detail});
  }
  print_list(o, out, rows);
  return {};
}

// The Openfire REST API of an initialised CA directory whose directory type is openfire.
Result<xmpp::OpenfireApi> openfire_api(const CaPaths& paths) {
  auto config = load_config(paths.config());
  if (!config) return config.error();
  if (config->directory.type != "openfire")
    return fail(Errc::invalid_request, paths.config().string() + " has directory type '" + config->directory.type +
                                           "'; these commands need \"openfire\" (evpn-ca init --directory openfire)");
  return xmpp::OpenfireApi::from_config(config->directory);
}

Result<bool> openfire_check(const OpenfireOptions& o) {
  auto api = openfire_api(CaPaths{o.dir});
  if (!api) return api.error();
  return xmpp::check_openfire(*api, std::cout);
}

Result<void> openfire_setup(const OpenfireOptions& o) {
  const CaPaths paths{o.dir};
  auto api = openfire_api(paths);
  if (!api) return api.error();
  auto signer = load_signer(paths);
  if (!signer) return signer.error();
  return xmpp::setup_openfire(
      *api, {std::filesystem::absolute(paths.ca_cert()), signer->root().fingerprint_sha256(), o.openfire_home},
      std::cout);
}

template <class Options>
int run(Result<void> (*command)(const Options&), const Options& options) {
  auto r = command(options);
  return r ? 0 : report(r.error());
}

}  // namespace

int run_init(const InitOptions& o) { return run(init, o); }
int run_serve(const ServeOptions& o) { return run(serve, o); }
int run_fingerprint(const FingerprintOptions& o) { return run(fingerprint, o); }
int run_group_add(const GroupAddOptions& o) { return run(group_add, o); }
int run_token_create(const TokenCreateOptions& o) { return run(token_create, o); }
int run_server_cert(const ServerCertOptions& o) { return run(server_cert, o); }
int run_revoke(const RevokeOptions& o) { return run(revoke, o); }
int run_nodes(const ListOptions& o) { return run(nodes, o); }
int run_token_list(const ListOptions& o) { return run(token_list, o); }
int run_token_revoke(const TokenRevokeOptions& o) { return run(token_revoke, o); }
int run_audit(const ListOptions& o) { return run(audit, o); }
int run_openfire_setup(const OpenfireOptions& o) { return run(openfire_setup, o); }
int run_openfire_check(const OpenfireOptions& o) {
  auto all_ok = openfire_check(o);
  return !all_ok ? report(all_ok.error()) : *all_ok ? 0 : 1;
}

}  // namespace evpn::ca
