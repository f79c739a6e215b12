// evpn-ca: the CA service and its admin commands. Parses the command line and calls one
// run_<command> per sub-command.

#include "ca-service/app.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/log.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>

int main(int argc, char** argv) {
  using namespace evpn::ca;
  CLI::App app{"evpn-ca: certificate authority and provisioning service for EdgeVPN.io nodes.\n"
               "Exit codes: 0 success, 1 failure (the message says why), 2 usage error."};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();

  InitOptions init;
  auto* init_cmd = app.add_subcommand("init", "create a CA directory: CA key and root, TLS certificate, config, store; "
                                              "prints the root fingerprint");
  init_cmd->add_option("--dir", init.dir, "CA directory to create")->required();
  init_cmd->add_option("--xmpp-domain", init.xmpp_domain, "XMPP domain of the node JIDs")->required();
  init_cmd->add_option("--xmpp-host", init.xmpp_host, "host nodes connect to for XMPP (default: the domain)");
  init_cmd->add_option("--xmpp-port", init.xmpp_port, "XMPP client (STARTTLS) port")->capture_default_str();
  init_cmd->add_option("--directory", init.directory, "XMPP directory backend")
      ->check(CLI::IsMember({"ejabberd", "openfire", "none"}))
      ->capture_default_str();
  init_cmd->add_option("--directory-url", init.directory_url,
                       "directory API URL [ejabberd: http://127.0.0.1:5280/api, openfire: "
                       "http://127.0.0.1:9090/plugins/restapi/v1]");
  init_cmd->add_option("--directory-secret-file", init.directory_secret_file,
                       "file holding the directory API secret (ejabberd, openfire basic auth: the password of "
                       "--directory-user)");
  init_cmd->add_option("--directory-secret-env", init.directory_secret_env,
                       "environment variable holding it instead, read by `serve`");
  init_cmd->add_option("--directory-auth", init.directory_auth, "openfire REST API authentication")
      ->check(CLI::IsMember({"secret", "basic"}))
      ->capture_default_str();
  init_cmd->add_option("--directory-user", init.directory_user,
                       "ejabberd: the full JID of the account evpn-ca calls the API as (e.g. evpn-ca@example.org); "
                       "openfire: the admin user for --directory-auth basic");
  init_cmd->add_option("--key-type", init.key_type, "CA key type: ec-p256, rsa-2048 or rsa-3072")->capture_default_str();
  init_cmd->add_option("--listen", init.listen, "HOST:PORT that `serve` listens on")->capture_default_str();
  init_cmd->add_option("--store", init.store,
                       "a PostgreSQL database shared by several `serve` replicas: postgresql://USER@HOST:PORT/DB "
                       "(TLS options such as ?sslmode=verify-full in the URL; default: SQLite in --dir)");
  init_cmd->add_option("--store-password-file", init.store_password_file,
                       "file holding the PostgreSQL password (default: libpq's PGPASSWORD or ~/.pgpass); its path, "
                       "not the password, goes in config.json");
  init_cmd->add_option("--metrics-listen", init.metrics_listen,
                       "HOST:PORT of the plain-HTTP Prometheus /metrics of `serve` (\"\" turns it off)")
      ->capture_default_str();
  init_cmd->add_option("--hostname", init.hostnames,
                       "name in the service's TLS certificate (repeatable; default: localhost, 127.0.0.1)");

  ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "run the HTTPS enrollment service until SIGTERM");
  serve_cmd->add_option("--dir", serve.dir, "CA directory")->required();

  FingerprintOptions fingerprint;
  auto* fingerprint_cmd = app.add_subcommand("fingerprint", "print the root's SHA-256 fingerprint (64 hex chars)");
  fingerprint_cmd->add_option("--dir", fingerprint.dir, "CA directory")->required();

  auto* group_cmd = app.add_subcommand("group", "manage groups (group <-> EdgeVPN overlay)");
  group_cmd->require_subcommand(1);
  GroupAddOptions group_add;
  auto* group_add_cmd = group_cmd->add_subcommand("add", "add a group bound to an overlay");
  group_add_cmd->add_option("--dir", group_add.dir, "CA directory")->required();
  group_add_cmd->add_option("--name", group_add.name, "group name (the XMPP shared roster group)")->required();
  group_add_cmd->add_option("--overlay", group_add.overlay, "EdgeVPN overlay id, e.g. 101000F")->required();
  group_add_cmd->add_option("--lifetime", group_add.lifetime, "certificate lifetime, e.g. 30d, 12h, 5m (minimum 1m)")
      ->capture_default_str();

  auto* token_cmd = app.add_subcommand("token", "manage enrollment tokens");
  token_cmd->require_subcommand(1);
  TokenCreateOptions token_create;
  auto* token_create_cmd = token_cmd->add_subcommand("create", "create a token; prints the token alone");
  token_create_cmd->add_option("--dir", token_create.dir, "CA directory")->required();
  token_create_cmd->add_option("--group", token_create.group, "group the token enrolls into")->required();
  token_create_cmd->add_option("--username", token_create.username, "allow only this username (default: any)");
  token_create_cmd->add_option("--ttl", token_create.ttl, "time until the token expires")->capture_default_str();
  token_create_cmd->add_option("--uses", token_create.uses, "number of enrollments allowed")->capture_default_str();
  token_create_cmd->add_flag("--adopt-existing", token_create.adopt_existing,
                             "let the token take over the XMPP account --username when it exists already on the "
                             "server but evpn-ca did not create it (otherwise such an enrollment is refused)");
  ListOptions token_list;
  auto* token_list_cmd = token_cmd->add_subcommand(
      "list", "list tokens: id, group, pinned username, uses left, expiry, creation, state (never the secret)");
  TokenRevokeOptions token_revoke;
  auto* token_revoke_cmd =
      token_cmd->add_subcommand("revoke", "revoke a token: enrollments with it are refused from now on");
  token_revoke_cmd->add_option("id", token_revoke.id, "the token's id (16 hex chars, see `token list`)")->required();

  ListOptions nodes;
  auto* nodes_cmd = app.add_subcommand("nodes", "list nodes: group, overlay, current serial, expiry and state "
                                                "(active, expiring, expired, revoked; directory step pending)");
  ListOptions audit;
  auto* audit_cmd = app.add_subcommand(
      "audit", "print the audit log: issuances, renewals, revocations, lockouts, token and group changes");
  for (auto [cmd, list] : {std::pair{token_list_cmd, &token_list}, std::pair{nodes_cmd, &nodes},
                           std::pair{audit_cmd, &audit}}) {
    cmd->add_option("--dir", list->dir, "CA directory")->required();
    cmd->add_flag("--json", list->json, "print JSON instead of a table");
  }
  token_revoke_cmd->add_option("--dir", token_revoke.dir, "CA directory")->required();

  RevokeOptions revoke;
  auto* revoke_cmd = app.add_subcommand(
      "revoke", "revoke a node's current certificate (or one certificate): refuses its renewal, lists it in the CRL "
                "(DIR/crl.der, GET /v1/crl) and locks the node out of the XMPP server, ending its sessions; "
                "prints the serial. A lockout the directory cannot take yet is retried by `serve`.");
  revoke_cmd->add_option("--dir", revoke.dir, "CA directory")->required();
  auto* target = revoke_cmd->add_option_group("target", "what to revoke (exactly one)");
  target->add_option("--username", revoke.username, "the node whose current certificate to revoke");
  target->add_option("--serial", revoke.serial, "the certificate to revoke (hex serial)");
  target->require_option(1);
  std::vector<std::string> reasons;
  for (const auto& reason : evpn::ca::signing::revocation_reasons) reasons.emplace_back(reason.name);
  revoke_cmd->add_option("--reason", revoke.reason, "RFC 5280 revocation reason")
      ->check(CLI::IsMember(reasons))
      ->capture_default_str();

  ServerCertOptions server_cert;
  auto* server_cert_cmd =
      app.add_subcommand("server-cert", "issue a TLS server certificate (e.g. for the XMPP server) from the root");
  server_cert_cmd->add_option("--dir", server_cert.dir, "CA directory")->required();
  server_cert_cmd->add_option("--name", server_cert.names, "DNS name or IP (repeatable; the XMPP domain first)")
      ->required();
  server_cert_cmd->add_option("--out", server_cert.out, "output prefix: writes PREFIX.crt, PREFIX.key, PREFIX.pem")
      ->required();
  server_cert_cmd->add_option("--lifetime", server_cert.lifetime, "certificate lifetime")->capture_default_str();
  server_cert_cmd->add_flag("--pkcs12", server_cert.pkcs12,
                            "also write PREFIX.p12 for Openfire's keystore and print the keytool commands");
  server_cert_cmd->add_option("--pkcs12-password", server_cert.pkcs12_password, "password of PREFIX.p12")
      ->capture_default_str();
  server_cert_cmd->add_option("--openfire-home", server_cert.openfire_home,
                              "Openfire's installation directory, for the printed keytool commands")
      ->capture_default_str();

  StoreMigrateOptions store_migrate;
  auto* store_cmd = app.add_subcommand("store", "manage the CA's store");
  store_cmd->require_subcommand(1);
  auto* store_migrate_cmd = store_cmd->add_subcommand(
      "migrate", "copy a stopped CA's SQLite store into an empty PostgreSQL database, verify the copy (row counts "
                 "per table, a checksum of the certificates) and point config.json at it");
  store_migrate_cmd->add_option("--dir", store_migrate.dir, "CA directory (stop its `serve` first)")->required();
  store_migrate_cmd->add_option("--to", store_migrate.to, "postgresql://USER@HOST:PORT/DB")->required();
  store_migrate_cmd->add_option("--store-password-file", store_migrate.store_password_file,
                                "file holding the PostgreSQL password (default: libpq's PGPASSWORD or ~/.pgpass)");

  auto* openfire_cmd = app.add_subcommand("openfire", "prepare an Openfire server for certificate login");
  openfire_cmd->require_subcommand(1);
  OpenfireOptions openfire;
  auto* openfire_check_cmd = openfire_cmd->add_subcommand(
      "check", "report OK / WRONG for the REST API and each certificate-login setting; exit 0 when all are OK");
  auto* openfire_setup_cmd = openfire_cmd->add_subcommand(
      "setup", "set the certificate-login properties through the REST API and print the keytool import and "
               "restart left to do");
  for (auto* cmd : {openfire_check_cmd, openfire_setup_cmd})
    cmd->add_option("--dir", openfire.dir, "CA directory (with directory type openfire)")->required();
  openfire_setup_cmd->add_option("--openfire-home", openfire.openfire_home, "Openfire's installation directory")
      ->capture_default_str();

  auto* ejabberd_cmd = app.add_subcommand("ejabberd", "check an ejabberd server for evpn-ca");
  ejabberd_cmd->require_subcommand(1);
  EjabberdOptions ejabberd;
  auto* ejabberd_check_cmd = ejabberd_cmd->add_subcommand(
      "check", "report OK / WRONG (with the fix) for the API, its permissions, the revoked group, and a revocation "
               "canary against the running server: a throwaway account with a two-minute certificate must log in, "
               "must not with a certificate from a foreign CA, and must not once locked out; exit 0 when all are OK");
  ejabberd_check_cmd->add_option("--dir", ejabberd.dir, "CA directory (with directory type ejabberd)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }
  evpn::init_logging("evpn-ca", log_level);
  try {
    if (*init_cmd) return run_init(init);
    if (*serve_cmd) return run_serve(serve);
    if (*fingerprint_cmd) return run_fingerprint(fingerprint);
    if (*group_add_cmd) return run_group_add(group_add);
    if (*token_create_cmd) return run_token_create(token_create);
    if (*token_list_cmd) return run_token_list(token_list);
    if (*token_revoke_cmd) return run_token_revoke(token_revoke);
    if (*nodes_cmd) return run_nodes(nodes);
    if (*audit_cmd) return run_audit(audit);
    if (*revoke_cmd) return run_revoke(revoke);
    if (*server_cert_cmd) return run_server_cert(server_cert);
    if (*openfire_check_cmd) return run_openfire_check(openfire);
    if (*store_migrate_cmd) return run_store_migrate(store_migrate);
    if (*openfire_setup_cmd) return run_openfire_setup(openfire);
    if (*ejabberd_check_cmd) return run_ejabberd_check(ejabberd);
  } catch (const std::exception& e) {
    spdlog::critical("unexpected failure: {}", e.what());
  }
  return EXIT_FAILURE;
}
