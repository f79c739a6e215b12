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
  std::string directory_url = "http://127.0.0.1:5280/api";
  std::string directory_secret_file;
  std::string key_type = "ec-p256";
  std::string listen = "127.0.0.1:8443";
  std::vector<std::string> hostnames;  // default: localhost, 127.0.0.1 and the listen host
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
};
int run_token_create(const TokenCreateOptions& options);

struct ServerCertOptions {
  std::string dir;
  std::vector<std::string> names;
  std::string out;  // PREFIX: writes PREFIX.crt, PREFIX.key and PREFIX.pem (certificate then key)
  std::string lifetime = "365d";
};
int run_server_cert(const ServerCertOptions& options);

}  // namespace evpn::ca
