#include "ca-service/app.hpp"

#include "ca-service/api/routes.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/config.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/log.hpp"
#include "common/net/url.hpp"

#include <iostream>
#include <thread>

namespace evpn::ca {

namespace {

using std::filesystem::perms;
constexpr auto private_file = perms::owner_read | perms::owner_write;
constexpr auto public_file = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
constexpr std::chrono::seconds tls_lifetime{825LL * 86400};

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

// Issues a key and server certificate for `names` and writes PREFIX.crt, PREFIX.key, PREFIX.pem.
Result<void> write_server_pair(const signing::Signer& signer, const std::vector<std::string>& names,
                               std::chrono::seconds lifetime, const std::filesystem::path& prefix) {
  auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
  if (!key) return key.error();
  auto cert = signer.issue_server(key->get(), names, lifetime, now_seconds());
  if (!cert) return cert.error();
  const std::string cert_pem = cert->to_pem(), key_pem = key->to_pem();
  auto with_suffix = [&](const char* suffix) { return std::filesystem::path(prefix.string() + suffix); };
  if (auto r = fs::write_file_atomic(with_suffix(".key"), key_pem, private_file); !r) return r;
  if (auto r = fs::write_file_atomic(with_suffix(".crt"), cert_pem, public_file); !r) return r;
  return fs::write_file_atomic(with_suffix(".pem"), cert_pem + key_pem, private_file);
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
  config.directory.url = o.directory == "none" ? "" : o.directory_url;
  config.directory.secret_file = o.directory_secret_file;
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

Result<void> serve(const ServeOptions& o) {
  const CaPaths paths{o.dir};
  auto config = load_config(paths.config());
  if (!config) return config.error();
  auto listen = parse_listen(config->listen);
  if (!listen) return listen.error();
  auto signer = load_signer(paths);
  if (!signer) return signer.error();
  auto store = store::Store::open(paths.store());
  if (!store) return store.error();
  auto directory = xmpp::make_directory(config->directory, config->xmpp.domain);
  if (!directory) return directory.error();
  auto tls_cert = fs::read_file(paths.tls_cert());
  if (!tls_cert) return tls_cert.error();
  auto tls_key = fs::read_file(paths.tls_key());
  if (!tls_key) return tls_key.error();

  authority::Authority authority(*store, *signer, **directory, config->xmpp);
  api::Routes routes(authority);
  api::ServerOptions server;
  server.host = listen->first;
  server.port = listen->second;
  server.cert_chain_pem = std::move(*tls_cert);
  server.key_pem = std::move(*tls_key);
  server.max_connections = config->max_connections;
  server.worker_threads = std::max(2u, std::thread::hardware_concurrency());
  spdlog::info("CA root fingerprint {}; XMPP domain {}; directory {}", signer->root().fingerprint_sha256(),
               config->xmpp.domain, config->directory.type);
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
  std::optional<std::string> username;
  if (!o.username.empty()) {
    if (auto r = enrollment::check_username(o.username); !r) return with_context(r.error(), "--username");
    username = o.username;
  }
  auto store = store::Store::open(CaPaths{o.dir}.store());
  if (!store) return store.error();
  auto group = store->find_group(o.group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::not_found, "no group '" + o.group + "': create it with `evpn-ca group add`");
  auto token = enrollment::make_token(o.group, username, *ttl, o.uses, now_seconds());
  if (auto r = store->add_token(token.record); !r) return r;
  std::cerr << "evpn-ca: token " << token.record.id << " for group " << o.group
            << (username ? " and username " + *username : std::string(" (any username)")) << ", " << o.uses
            << " use(s), expires " << to_rfc3339(token.record.expires_at) << "\n";
  std::cout << token.text << "\n";
  return {};
}

Result<void> server_cert(const ServerCertOptions& o) {
  if (o.names.empty()) return fail(Errc::invalid_request, "give at least one --name");
  auto lifetime = parse_duration(o.lifetime);
  if (!lifetime) return with_context(lifetime.error(), "--lifetime");
  auto signer = load_signer(CaPaths{o.dir});
  if (!signer) return signer.error();
  if (auto r = write_server_pair(*signer, o.names, *lifetime, o.out); !r) return r;
  std::cerr << "evpn-ca: wrote " << o.out << ".crt, " << o.out << ".key and " << o.out
            << ".pem (certificate then key, for ejabberd's certfiles)\n";
  return {};
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

}  // namespace evpn::ca
