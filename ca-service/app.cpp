#include "ca-service/app.hpp"

#include "ca-service/authority/revocation_canary.hpp"
#include "ca-service/config.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/lists.hpp"
#include "ca-service/service.hpp"
#include "ca-service/store/migrate.hpp"
#include "ca-service/xmpp/ejabberd.hpp"
#include "ca-service/xmpp/openfire_admin.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/url.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace evpn::ca {

namespace {

using std::filesystem::perms;
constexpr auto private_file = perms::owner_read | perms::owner_write;
constexpr auto public_file = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
constexpr std::chrono::seconds tls_lifetime{825LL * 86400};
using nlohmann::json;

int report(const Error& e) {
  std::cerr << "evpn-ca: " << e.detail << "\n";
  return 1;
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

// Points `config` at the PostgreSQL store `url` (given as `option`), with its password file made
// absolute, so that every replica directory copied from it finds the file.
Result<void> use_postgres(CaConfig& config, const std::string& url, const std::string& password_file,
                          const char* option) {
  if (auto r = store::check_postgres_url(url); !r) return with_context(r.error(), option);
  config.store = url;
  if (!password_file.empty()) config.store_password_file = std::filesystem::absolute(password_file).string();
  return {};
}

Result<void> init(const InitOptions& o) {
  const CaPaths paths{o.dir};
  if (std::filesystem::exists(paths.ca_key()))
    return fail(Errc::conflict, paths.dir.string() + " already holds a CA; choose another --dir");
  const auto directory = parse_directory_type(o.directory);
  if (!directory) return fail(Errc::invalid_request, "--directory must be ejabberd, openfire or none");
  const auto auth = parse_directory_auth(o.directory_auth);
  if (!auth) return fail(Errc::invalid_request, "--directory-auth must be secret or basic");
  if (o.xmpp_port <= 0 || o.xmpp_port > 65535) return fail(Errc::invalid_request, "--xmpp-port must be 1-65535");

  CaConfig config;
  config.xmpp = {o.xmpp_domain, o.xmpp_host.empty() ? o.xmpp_domain : o.xmpp_host,
                 static_cast<std::uint16_t>(o.xmpp_port)};
  config.directory.type = *directory;
  config.directory.url = *directory == DirectoryType::none     ? ""
                         : !o.directory_url.empty()            ? o.directory_url
                         : *directory == DirectoryType::openfire ? "http://127.0.0.1:9090/plugins/restapi/v1"
                                                                 : "http://127.0.0.1:5280/api";
  config.directory.secret_file = o.directory_secret_file;
  config.directory.secret_env = o.directory_secret_env;
  config.directory.auth = *auth;
  config.directory.username = o.directory_user;
  config.listen = o.listen;
  config.metrics_listen = o.metrics_listen;
  config.key_type = o.key_type;
  if (auto valid = validate_config(config); !valid) return valid;
  auto key_type = crypto::parse_key_type(config.key_type);
  if (!key_type) return key_type.error();
  auto listen = parse_listen(config.listen);
  if (!listen) return listen.error();
  config.hostnames = o.hostnames;
  if (config.hostnames.empty()) {
    config.hostnames = {"localhost", "127.0.0.1"};
    if (listen->host != "localhost" && listen->host != "127.0.0.1" && listen->host != "0.0.0.0")
      config.hostnames.insert(config.hostnames.begin(), listen->host);
  }

  // A shared store is checked before anything is written: it must answer, and it must not hold
  // another CA's state (a replica is a copy of that CA's directory, not a new init).
  std::optional<store::Store> shared;
  if (!o.store.empty()) {
    if (auto r = use_postgres(config, o.store, o.store_password_file, "--store"); !r) return r;
    auto opened = open_store(paths, config);
    if (!opened) return opened.error();
    auto unused = opened->unused();
    if (!unused) return unused.error();
    if (!*unused)
      return fail(Errc::conflict, "the store " + o.store + " already holds a CA's state; to add a replica of that "
                                  "CA, copy its directory (keys included) instead of running init");
    shared.emplace(std::move(*opened));
  } else if (!o.store_password_file.empty()) {
    return fail(Errc::invalid_request, "--store-password-file goes with --store postgresql://...");
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
  if (!shared) {
    if (auto store = store::Store::open(paths.store()); !store) return store.error();
    // Token hashes and the issuance history are nobody else's business.
    std::filesystem::permissions(paths.store(), private_file, ec);
  }

  std::cerr << "evpn-ca: initialised " << paths.dir.string() << " for XMPP domain " << o.xmpp_domain
            << "; give nodes the CA URL https://" << config.hostnames.front() << ":" << listen->port
            << " and this root fingerprint:\n";
  std::cout << signer.root().fingerprint_sha256() << "\n";
  return {};
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
  auto store = open_store(CaPaths{o.dir});
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
  auto service = Service::open(paths);
  if (!service) return service.error();
  Service& ca = **service;
  auto revoked = ca.authority().revoke({o.username, o.serial, o.reason}, now_seconds());
  if (!revoked && revoked.error().code == Errc::not_found)
    return fail(Errc::not_found, revoked.error().detail + "; `evpn-ca nodes --dir " + o.dir +
                                     "` shows the nodes and their current serials");
  if (!revoked) return revoked.error();
  const auto& r = revoked->revocation;
  std::cerr << "evpn-ca: revoked certificate " << r.serial << " of " << r.username << " (" << r.reason << ")\n";
  if (auto written = ca.write_crl(); !written)
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
  else if (ca.config().directory.type == DirectoryType::none)
    std::cerr << "evpn-ca: no XMPP directory is configured (type none): lock " << r.username
              << " out on the XMPP server yourself\n";
  else
    std::cerr << "evpn-ca: " << r.username << " can no longer log in to the XMPP server and its sessions were ended\n";
  std::cout << r.serial << "\n";
  return {};
}

Result<void> token_revoke(const TokenRevokeOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  if (auto r = store->revoke_token(o.id, now_seconds()); !r) {
    if (r.error().code == Errc::not_found)
      return fail(Errc::not_found, r.error().detail + "; `evpn-ca token list --dir " + o.dir + "` shows the ids");
    return r;
  }
  std::cerr << "evpn-ca: token " << o.id << " revoked: enrollments with it are refused\n";
  return {};
}

// The config of an initialised CA directory whose directory type is `type`, which `commands` (e.g.
// "this command") need.
Result<CaConfig> load_config_for(const CaPaths& paths, DirectoryType type, const char* commands) {
  auto config = load_config(paths.config());
  if (!config) return config.error();
  if (config->directory.type != type) {
    const std::string wanted(to_string(type));
    return fail(Errc::invalid_request, paths.config().string() + " has directory type '" +
                                           std::string(to_string(config->directory.type)) + "'; " + commands +
                                           " \"" + wanted + "\" (evpn-ca init --directory " + wanted + ")");
  }
  return config;
}

// The Openfire REST API of an initialised CA directory whose directory type is openfire.
Result<xmpp::OpenfireApi> openfire_api(const CaPaths& paths) {
  auto config = load_config_for(paths, DirectoryType::openfire, "these commands need");
  if (!config) return config.error();
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

Result<void> store_migrate(const StoreMigrateOptions& o) {
  const CaPaths paths{o.dir};
  auto config = load_config(paths.config());
  if (!config) return config.error();
  if (!config->store.empty())
    return fail(Errc::conflict, paths.config().string() + " already names the store " + config->store);
  CaConfig moved = *config;
  if (auto r = use_postgres(moved, o.to, o.store_password_file, "--to"); !r) return r;
  auto target = store_location(paths, moved);
  if (!target) return target.error();
  auto copied = store::copy_to_postgres(paths.store(), *target);
  if (!copied) return copied.error();
  if (auto r = save_config(paths.config(), moved); !r)
    return with_context(r.error(), "the copy in " + o.to + " is complete but config.json still names SQLite");
  for (const auto& [table, rows] : copied->rows) std::cout << table << " " << rows << "\n";
  std::cout << "certificates sha256 " << copied->certificates_sha256 << "\n";
  std::cerr << "evpn-ca: copied " << paths.store().string() << " into " << o.to
            << " and verified it; config.json now names it. Keep " << paths.store().filename().string()
            << " as a backup: the CA no longer uses it.\n";
  return {};
}

Result<bool> ejabberd_check(const EjabberdOptions& o) {
  const CaPaths paths{o.dir};
  auto config = load_config_for(paths, DirectoryType::ejabberd, "this command needs");
  if (!config) return config.error();
  auto signer = load_signer(paths);
  if (!signer) return signer.error();
  auto ejabberd = xmpp::EjabberdDirectory::from_config(config->directory, config->xmpp.domain);
  if (!ejabberd) return ejabberd.error();
  const auto api = xmpp::check_ejabberd_api(*ejabberd, std::cout);
  bool all_ok = api.all_ok;
  if (api.answers) {
    const auto canary = authority::run_canary(*ejabberd, *signer, canary_target(*config, paths),
                                              evpn::xmpp::verify_login, now_seconds());
    all_ok = authority::print_canary(canary, std::cout) && all_ok;
  } else {
    std::cout << "revocation canary: not run, the API does not answer\n";
  }
  std::cout << (all_ok ? "result: OK\n" : "result: WRONG items above, each with its fix\n");
  return all_ok;
}

template <class Options>
int run(Result<void> (*command)(const Options&), const Options& options) {
  auto r = command(options);
  return r ? 0 : report(r.error());
}

}  // namespace

int run_init(const InitOptions& o) { return run(init, o); }
int run_store_migrate(const StoreMigrateOptions& o) { return run(store_migrate, o); }
int run_serve(const ServeOptions& o) { return run(serve, o); }
int run_fingerprint(const FingerprintOptions& o) { return run(fingerprint, o); }
int run_group_add(const GroupAddOptions& o) { return run(group_add, o); }
int run_token_create(const TokenCreateOptions& o) { return run(token_create, o); }
int run_server_cert(const ServerCertOptions& o) { return run(server_cert, o); }
int run_revoke(const RevokeOptions& o) { return run(revoke, o); }
int run_nodes(const ListOptions& o) { return run(list_nodes, o); }
int run_token_list(const ListOptions& o) { return run(list_tokens, o); }
int run_token_revoke(const TokenRevokeOptions& o) { return run(token_revoke, o); }
int run_audit(const ListOptions& o) { return run(list_audit, o); }
int run_openfire_setup(const OpenfireOptions& o) { return run(openfire_setup, o); }
// A check's exit code: 0 when everything is OK, 1 otherwise.
template <class Options>
int run_check(Result<bool> (*check)(const Options&), const Options& options) {
  auto all_ok = check(options);
  return !all_ok ? report(all_ok.error()) : *all_ok ? 0 : 1;
}
int run_openfire_check(const OpenfireOptions& o) { return run_check(openfire_check, o); }
int run_ejabberd_check(const EjabberdOptions& o) { return run_check(ejabberd_check, o); }

}  // namespace evpn::ca
