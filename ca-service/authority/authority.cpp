#include "ca-service/authority/authority.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "common/crypto/csr.hpp"
#include "common/log.hpp"

namespace evpn::ca::authority {

namespace {

// The directory's own error says what failed; the node is told what it means for it.
Error directory_failure(const Error& e) {
  spdlog::warn("directory provisioning failed: {}", e.detail);
  return fail(Errc::unavailable, "the XMPP server's directory could not be updated (" + e.detail +
                                     "); nothing was issued and the token was not spent: retry later");
}

}  // namespace

Authority::Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory,
                     XmppConfig xmpp)
    : store_(store), signer_(signer), directory_(directory), xmpp_(std::move(xmpp)) {}

Result<Issued> Authority::enroll(const protocol::EnrollRequest& request, TimePoint now) {
  // Decode and validate everything that needs no secret first, so a malformed request never
  // reaches the token table.
  auto csr = crypto::Csr::from_pem(request.csr);
  if (!csr) return csr.error();
  if (auto r = csr->verify_signature(); !r) return r.error();
  if (auto r = crypto::check_key_policy(csr->public_key()); !r) return r.error();
  auto username = csr->common_name();
  if (!username) return username.error();
  if (auto r = enrollment::check_username(*username); !r) return with_context(r.error(), "the CSR's CN");

  auto token = enrollment::parse_token(request.token);
  if (!token) return token.error();
  auto record = store_.find_token(token->id);
  if (!record) return record.error();
  if (!*record) return fail(Errc::unauthorized, "the enrollment token is unknown, expired or used up; ask the operator for a new one");
  if (auto r = enrollment::check_token(**record, *token, *username, now); !r) {
    spdlog::info("enrollment refused for token {}: {}", token->id, r.error().detail);
    return r.error();
  }
  auto group = store_.find_group((*record)->group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::internal, "the token's group '" + (*record)->group + "' does not exist");

  auto node = store_.find_node(*username);
  if (!node) return node.error();
  if (*node) {
    const auto& existing = **node;
    if (existing.group != (*group)->name)
      return fail(Errc::conflict, "username '" + *username + "' is already enrolled in group '" + existing.group +
                                      "': choose another username");
    // Only a token made for this very name may take over a name that a live certificate holds.
    const bool live = existing.status == "active" && existing.not_after > now;
    if (live && (*record)->username != *username)
      return fail(Errc::conflict, "username '" + *username +
                                      "' is held by another node; to re-enroll it, use a token created with "
                                      "--username " + *username);
  }

  if (auto r = directory_.ensure_group((*group)->name); !r) return directory_failure(r.error());
  if (auto r = directory_.ensure_user(*username); !r) return directory_failure(r.error());
  if (auto r = directory_.add_member(*username, (*group)->name); !r) return directory_failure(r.error());

  auto cert = signer_.issue_node(csr->public_key(), {*username, xmpp_.domain, (*group)->lifetime}, now);
  if (!cert) return cert.error();
  store::CertificateRecord cert_record{cert->serial_hex(), *username,       (*group)->name, cert->not_before(),
                                       cert->not_after(),  cert->to_pem(), "active",       now};
  // Spending the use and recording the certificate are one transaction: a concurrent request that
  // took the last use makes this one fail here, and its certificate is never handed out.
  if (auto r = store_.record_enrollment(token->id, cert_record, now); !r) return r.error();

  const auto lifetime = cert->not_after() - now;
  Issued issued;
  issued.token_id = token->id;
  auto& out = issued.result;
  out.certificate = cert_record.pem;
  out.root = signer_.root().to_pem();
  out.serial = cert_record.serial;
  out.not_before = to_rfc3339(cert->not_before());
  out.not_after = to_rfc3339(cert->not_after());
  out.renew_after = to_rfc3339(now + lifetime * 2 / 3);
  out.server_time = to_rfc3339(now);
  out.node = {*username, *username + "@" + xmpp_.domain, (*group)->name, (*group)->overlay};
  out.xmpp = {xmpp_.host, xmpp_.port, xmpp_.domain, "starttls"};
  return issued;
}

std::string Authority::roots_pem() const { return signer_.root().to_pem(); }

Result<void> Authority::health() {
  if (auto r = store_.ping(); !r) return r;
  if (auto r = directory_.ping(); !r) return fail(Errc::unavailable, "the XMPP directory does not answer: " + r.error().detail);
  return {};
}

}  // namespace evpn::ca::authority
