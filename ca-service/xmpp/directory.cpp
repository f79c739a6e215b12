#include "ca-service/xmpp/directory.hpp"

#include "ca-service/xmpp/ejabberd.hpp"
#include "ca-service/xmpp/openfire.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/https_client.hpp"

namespace evpn::ca::xmpp {
namespace {

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
};

}  // namespace

Result<net::HttpClient> make_directory_client(const DirectoryConfig& config, const net::Url& url) {
  if (config.timeout_ms <= 0) return fail(Errc::invalid_request, "directory.timeout_ms must be a positive number");
  net::ClientTls tls;
  if (url.scheme == "https" && !config.ca_file.empty()) {
    auto pem = fs::read_file(config.ca_file);
    if (!pem) return with_context(pem.error(), "directory.ca_file");
    tls.ca_pem = std::move(*pem);
  }
  return net::HttpClient(std::move(tls), std::chrono::milliseconds(config.timeout_ms));
}

Result<std::unique_ptr<Directory>> make_directory(const DirectoryConfig& config, const std::string& xmpp_domain) {
  if (config.type == "none") return std::unique_ptr<Directory>(std::make_unique<NoDirectory>());
  if (config.type == "openfire") return make_openfire_directory(config);
  if (config.type != "ejabberd")
    return fail(Errc::invalid_request,
                "unknown directory type '" + config.type + "' (expected ejabberd, openfire or none)");

  auto url = net::parse_url(config.url);
  if (!url) return with_context(url.error(), "directory.url");
  auto client = make_directory_client(config, *url);
  if (!client) return client.error();
  return std::unique_ptr<Directory>(
      std::make_unique<EjabberdDirectory>(std::move(*url), std::move(*client), xmpp_domain));
}

}  // namespace evpn::ca::xmpp
