#pragma once
// evpn-ca sub-commands: one options struct and one run_<name> per command. Each returns the
// process exit code (0 ok, 1 failure, 2 usage) and prints errors to stderr.

#include <string>
#include <vector>

namespace evpn::ca {

struct InitOptions {
  std::string dir;
  std::string xmpp_domain;
  std::string xmpp_host;  // default: the domain
  int xmpp_port = 5222;
  std::string directory = "ejabberd";
  std::string directory_url;  // default: ejabberd http://127.0.0.1:5280/api, openfire http://127.0.0.1:9090/plugins/restapi/v1
  std::string directory_secret_file;
  std::string directory_secret_env;
  std::string directory_auth = "secret";  // openfire: "secret" or "basic"
  std::string directory_user;             // ejabberd: the API account's JID; openfire: admin for "basic"
  std::string key_type = "ec-p256";
  std::string listen = "127.0.0.1:8443";
  std::string metrics_listen = "127.0.0.1:9464";  // "" for none
  std::vector<std::string> hostnames;  // default: localhost, 127.0.0.1 and the listen host
  std::string store;                   // default: SQLite in DIR; or postgresql://USER@HOST:PORT/DB
  std::string store_password_file;     // PostgreSQL's password (default: libpq's PGPASSWORD, ~/.pgpass)
};
int run_init(const InitOptions& options);

struct ServeOptions {
  std::string dir;
};
int run_serve(const ServeOptions& options);

struct FingerprintOptions {
  std::string dir;
};
int run_fingerprint(const FingerprintOptions& options);

struct GroupAddOptions {
  std::string dir;
  std::string name;
  std::string overlay;
  std::string lifetime = "30d";
};
int run_group_add(const GroupAddOptions& options);

struct TokenCreateOptions {
  std::string dir;
  std::string group;
  std::string username;  // "" = any username
  std::string ttl = "24h";
  int uses = 1;
  bool adopt_existing = false;  // may take over an existing XMPP account of `username`
};
int run_token_create(const TokenCreateOptions& options);

struct RevokeOptions {
  std::string dir;
  std::string username;  // the node's current certificate, or
  std::string serial;    // this certificate
  std::string reason = "unspecified";
};
// Prints the revoked serial; exit 0 once the revocation is recorded, also when the directory
// lockout failed and stays queued for `serve` (a warning says so).
int run_revoke(const RevokeOptions& options);

// `nodes`, `token list` and `audit`: a table, or JSON with --json.
struct ListOptions {
  std::string dir;
  bool json = false;
};
int run_nodes(const ListOptions& options);
int run_token_list(const ListOptions& options);
int run_audit(const ListOptions& options);

struct StoreMigrateOptions {
  std::string dir;
  std::string to;  // postgresql://USER@HOST:PORT/DB
  std::string store_password_file;
};
int run_store_migrate(const StoreMigrateOptions& options);

struct TokenRevokeOptions {
  std::string dir;
  std::string id;
};
int run_token_revoke(const TokenRevokeOptions& options);

struct ServerCertOptions {
  std::string dir;
  std::vector<std::string> names;
  std::string out;  // PREFIX: writes PREFIX.crt, PREFIX.key and PREFIX.pem (certificate then key)
  std::string lifetime = "365d";
  bool pkcs12 = false;  // also PREFIX.p12 (for Openfire's keystore), encrypted with pkcs12_password
  std::string pkcs12_password = "changeit";
  std::string openfire_home = "/usr/share/openfire";  // for the printed keytool commands
};
int run_server_cert(const ServerCertOptions& options);

struct OpenfireOptions {
  std::string dir;
  std::string openfire_home = "/usr/share/openfire";  // for the printed keytool commands
};
// `openfire check`: 0 when every setting is OK, 1 otherwise.
int run_openfire_check(const OpenfireOptions& options);
int run_openfire_setup(const OpenfireOptions& options);

struct EjabberdOptions {
  std::string dir;
};
// `ejabberd check`: the API's answers and permissions, the revoked group, and the revocation canary
// against the running server; 0 when everything is OK, 1 otherwise.
int run_ejabberd_check(const EjabberdOptions& options);

}  // namespace evpn::ca
