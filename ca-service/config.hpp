#pragma once
// The CA directory's config.json: written by `evpn-ca init`, editable afterwards.

#include "common/result.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evpn::ca {

struct XmppConfig {
  std::string domain;         // the XMPP domain; node JIDs are <username>@<domain>
  std::string host;           // where nodes connect (default: the domain)
  std::uint16_t port = 5222;  // STARTTLS c2s port
};

// The XMPP server whose accounts and groups evpn-ca provisions; none for servers managed elsewhere.
enum class DirectoryType { ejabberd, openfire, none };
std::string_view to_string(DirectoryType type);
std::optional<DirectoryType> parse_directory_type(std::string_view text);

// How evpn-ca authenticates to Openfire's REST API: its shared secret, or an admin account.
enum class DirectoryAuth { secret, basic };
std::string_view to_string(DirectoryAuth auth);
std::optional<DirectoryAuth> parse_directory_auth(std::string_view text);

struct DirectoryConfig {
  DirectoryType type = DirectoryType::ejabberd;
  std::string url;  // e.g. http://127.0.0.1:5280/api
  DirectoryAuth auth = DirectoryAuth::secret;  // Openfire only
  std::string username;  // ejabberd: the API account's JID; Openfire: the admin user for basic
  std::string secret_file;        // file holding the API secret (basic, ejabberd: the password), if any
  std::string secret_env;         // environment variable holding it, if any
  std::string ca_file;            // PEM trust anchors for an https url ("" = system store)
  int timeout_ms = 5000;
};

// Failed enroll/renew attempts (answers 400, 401, 403, 409), and successful renewals, that `serve`
// hears before it answers 429 with Retry-After; 0 turns a limit off.
struct RateLimitConfig {
  int address_failures = 10;  // per client address (enroll and renew together)
  int address_window_seconds = 60;
  int token_failures = 5;  // per token id, from any address: a token's secret cannot be guessed online
  int token_window_seconds = 600;
  // Successful renewals per username: a node renews once in two thirds of its lifetime, so these
  // only stop one that renews in a loop (each renewal signs and provisions the directory).
  int renewals_per_username = 10;
  int renewal_window_seconds = 3600;
};

// Usernames no token may enroll, pinned or not: accounts that people or the server itself use.
inline const std::vector<std::string> default_reserved_usernames{"admin",    "administrator", "root",
                                                                 "openfire", "ejabberd",      "postmaster"};

struct CaConfig {
  XmppConfig xmpp;
  DirectoryConfig directory;
  std::string listen = "127.0.0.1:8443";  // host:port of `serve`
  // host:port of the plain-HTTP Prometheus endpoint of `serve`; "" turns it off.
  std::string metrics_listen = "127.0.0.1:9464";
  std::vector<std::string> hostnames;      // names in the service's TLS certificate
  std::string key_type = "ec-p256";        // of the CA key
  int max_connections = 256;
  int max_connections_per_address = 32;  // of max_connections, per client address
  RateLimitConfig rate_limits;
  std::vector<std::string> reserved_usernames = default_reserved_usernames;
  // The store: "" for SQLite in DIR/state.db, or a postgresql://USER@HOST:PORT/DB URL (TLS options
  // such as sslmode in its query) that several `serve` replicas share.
  std::string store;
  // A file holding PostgreSQL's password; "" lets libpq find it (PGPASSWORD, ~/.pgpass).
  std::string store_password_file;
};

// Where `serve` listens ("listen" in config.json, `init --listen`).
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};
// HOST:PORT, e.g. 127.0.0.1:8443; Errc::invalid_request naming `option` otherwise.
Result<ListenAddress> parse_listen(const std::string& listen, const std::string& option = "listen (--listen)");

// True for a JID that ejabberd's mod_http_api takes as the basic-auth user: "user@host", with no
// ':' (the header splits user from password at the first one), space or control character.
bool is_account_jid(std::string_view jid);

// The rules of a config that hold across its keys, checked by `init` before it writes one and by
// load_config after it reads one. Errc::invalid_request naming the key (and the `init` option
// that sets it) and how to fix it.
Result<void> validate_config(const CaConfig& config);
// The directory section's share of those rules; the directory backends check it too.
Result<void> validate_directory(const DirectoryConfig& directory, const std::string& xmpp_domain);

// Errc::invalid_request naming the bad key, or Errc::not_found / Errc::io.
Result<CaConfig> load_config(const std::filesystem::path& file);
Result<void> save_config(const std::filesystem::path& file, const CaConfig& config);

// The files of a CA directory.
struct CaPaths {
  std::filesystem::path dir;
  std::filesystem::path config() const { return dir / "config.json"; }
  std::filesystem::path ca_key() const { return dir / "ca.key"; }
  std::filesystem::path ca_cert() const { return dir / "ca.crt"; }
  std::filesystem::path tls_dir() const { return dir / "tls"; }
  std::filesystem::path tls_cert() const { return dir / "tls" / "server.crt"; }
  std::filesystem::path tls_key() const { return dir / "tls" / "server.key"; }
  std::filesystem::path store() const { return dir / "state.db"; }
  std::filesystem::path crl() const { return dir / "crl.der"; }
};

}  // namespace evpn::ca
