#include "ca-service/xmpp/directory.hpp"

#include "ca-service/xmpp/ejabberd.hpp"
#include "ca-service/xmpp/openfire.hpp"
#include "common/crypto/certificate.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/https_client.hpp"

#include <algorithm>
#include <cstdlib>
#include <iomanip>

namespace evpn::ca::xmpp {
namespace {

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1));
}

Result<std::unique_ptr<Directory>> make_ejabberd_directory(const DirectoryConfig& config,
                                                           const std::string& xmpp_domain) {
  auto ejabberd = EjabberdDirectory::from_config(config, xmpp_domain);
  if (!ejabberd) return ejabberd.error();
  return std::unique_ptr<Directory>(std::make_unique<EjabberdDirectory>(std::move(*ejabberd)));
}

// For deployments that manage XMPP accounts elsewhere: every call succeeds and changes nothing.
class NoDirectory final : public Directory {
 public:
  Result<void> ensure_group(const std::string&) override { return {}; }
  Result<bool> user_exists(const std::string&) override { return false; }
  Result<void> create_user(const std::string&) override { return {}; }
  Result<void> add_member(const std::string&, const std::string&) override { return {}; }
  Result<void> disable_user(const std::string&) override { return {}; }
  Result<void> lift_lockout(const std::string&) override { return {}; }
  Result<void> delete_user(const std::string&) override { return {}; }
  Result<void> ping() override { return {}; }
  bool manages_accounts() const override { return false; }
};

}  // namespace

Result<net::HttpClient> make_directory_client(const DirectoryConfig& config, const net::Url& url) {
  net::ClientTls tls;
  if (url.scheme == "https" && !config.ca_file.empty()) {
    auto pem = fs::read_file(config.ca_file);
    if (!pem) return with_context(pem.error(), "directory.ca_file");
    tls.ca_pem = std::move(*pem);
  }
  return net::HttpClient(std::move(tls), std::chrono::milliseconds(config.timeout_ms));
}

Result<std::string> read_secret(const DirectoryConfig& c) {
  std::string secret;
  if (!c.secret_file.empty()) {
    auto text = fs::read_file(c.secret_file, 4096);
    if (!text) return with_context(text.error(), "directory.secret_file");
    secret = trim(*text);
    if (secret.empty()) return fail(Errc::invalid_request, "directory.secret_file " + c.secret_file + " is empty");
  } else {
    const char* value = std::getenv(c.secret_env.c_str());
    secret = value ? trim(value) : "";
    if (secret.empty())
      return fail(Errc::invalid_request,
                  "the environment variable " + c.secret_env + " named by directory.secret_env is not set or empty");
  }
  // A line break would end the Authorization header early and smuggle in another one.
  if (secret.find_first_of("\r\n") != std::string::npos)
    return fail(Errc::invalid_request, "the directory secret must be a single line");
  return secret;
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  return "Basic " + crypto::to_base64(std::string(user) + ":" + std::string(password));
}

Result<std::unique_ptr<Directory>> make_directory(const DirectoryConfig& config, const std::string& xmpp_domain) {
  if (auto valid = validate_directory(config, xmpp_domain); !valid) return valid.error();
  switch (config.type) {
    case DirectoryType::none: return std::unique_ptr<Directory>(std::make_unique<NoDirectory>());
    case DirectoryType::openfire: return make_openfire_directory(config);
    case DirectoryType::ejabberd: return make_ejabberd_directory(config, xmpp_domain);
  }
  return fail(Errc::internal, "unknown directory type");
}

void print_check_line(std::ostream& out, std::string_view mark, std::string_view text) {
  out << "  " << std::left << std::setw(6) << mark << " " << text << "\n";
}

}  // namespace evpn::ca::xmpp
