#include "ca-service/authority/authority.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "common/log.hpp"

namespace evpn::ca::authority {

namespace {

constexpr const char* token_refused = "the enrollment token is unknown, expired or used up; ask the operator for a new one";

// The directory's own error says what failed; the node is told what it means for it.
Error directory_failure(const Error& e) {
  spdlog::warn("directory provisioning failed: {}", e.detail);
  return fail(Errc::unavailable, "the XMPP server's directory could not be updated (" + e.detail +
                                     "); nothing was issued and no token was spent: retry later");
}

// A CSR whose signature holds and whose key meets the policy; of it only the key is ever used.
Result<crypto::Csr> decode_csr(const std::string& pem) {
  auto csr = crypto::Csr::from_pem(pem);
  if (!csr) return csr.error();
  if (auto r = csr->verify_signature(); !r) return r.error();
  if (auto r = crypto::check_key_policy(csr->public_key()); !r) return r.error();
  return csr;
}

}  // namespace

Authority::Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory,
                     XmppConfig xmpp)
    : store_(store), signer_(signer), directory_(directory), xmpp_(std::move(xmpp)) {}

template <class Record>
Result<Issued> Authority::issue(const crypto::Csr& csr, const std::string& username, const store::GroupRecord& group,
                                TimePoint now, Record record) {
  // The XMPP side is made right before anything is signed: a node never holds a certificate for
  // an account that does not exist.
  if (auto r = directory_.ensure_group(group.name); !r) return directory_failure(r.error());
  if (auto r = directory_.ensure_user(username); !r) return directory_failure(r.error());
  if (auto r = directory_.add_member(username, group.name); !r) return directory_failure(r.error());

  auto cert = signer_.issue_node(csr.public_key(), {username, xmpp_.domain, group.lifetime}, now);
  if (!cert) return cert.error();
  store::CertificateRecord cert_record{cert->serial_hex(), username,        group.name, cert->not_before(),
                                       cert->not_after(),  cert->to_pem(), "active",   now};
  // Recording is the commit point: a concurrent request that won the race makes this one fail
  // here, and its certificate is never handed out.
  if (auto r = record(cert_record); !r) return r.error();

  const auto lifetime = cert->not_after() - now;
  Issued issued;
  auto& out = issued.result;
  out.certificate = cert_record.pem;
  out.root = signer_.root().to_pem();
  out.serial = cert_record.serial;
  out.not_before = to_rfc3339(cert->not_before());
  out.not_after = to_rfc3339(cert->not_after());
  out.renew_after = to_rfc3339(now + lifetime * 2 / 3);
  out.server_time = to_rfc3339(now);
  out.node = {username, username + "@" + xmpp_.domain, group.name, group.overlay};
  out.xmpp = {xmpp_.host, xmpp_.port, xmpp_.domain, "starttls"};
  return issued;
}

Result<Issued> Authority::enroll(const protocol::EnrollRequest& request, TimePoint now) {
  // Everything that needs no secret is checked first, so a malformed request never reaches the
  // token table.
  auto csr = decode_csr(request.csr);
  if (!csr) return csr.error();
  auto username = csr->common_name();
  if (!username) return username.error();
  if (auto r = enrollment::check_username(*username); !r) return with_context(r.error(), "the CSR's CN");

  auto token = enrollment::parse_token(request.token);
  if (!token) return token.error();
  auto record = store_.find_token(token->id);
  if (!record) return record.error();
  if (!*record) return fail(Errc::unauthorized, token_refused);
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
  auto issued = issue(*csr, *username, **group, now, [&](const store::CertificateRecord& cert) {
    return store_.record_enrollment(token->id, cert, now);
  });
  if (issued) issued->token_id = token->id;
  return issued;
}

Result<Issued> Authority::renew(const protocol::RenewRequest& request, const crypto::Certificate* current,
                                TimePoint now) {
  if (!current)
    return fail(Errc::unauthorized, "renewal needs the node's current certificate as the TLS client certificate");
  std::vector<crypto::Certificate> roots;
  roots.push_back(signer_.root().clone());
  if (auto r = crypto::verify_chain(*current, roots, now, X509_PURPOSE_SSL_CLIENT); !r)
    return fail(Errc::unauthorized, "the client certificate cannot renew (" + r.error().detail +
                                        "); an expired or foreign certificate needs a new enrollment with a token");
  const std::string username = current->common_name();
  const std::string serial = current->serial_hex();
  auto known = store_.find_certificate(serial);
  if (!known) return known.error();
  if (!*known || (*known)->username != username)
    return fail(Errc::unauthorized, "certificate " + serial + " was not issued by this CA's store");
  if ((*known)->status != "active")
    return fail(Errc::unauthorized, "certificate " + serial + " is " + (*known)->status +
                                        " and cannot renew; enroll again with a token");

  auto csr = decode_csr(request.csr);
  if (!csr) return csr.error();
  auto cn = csr->common_name();
  if (!cn) return cn.error();
  if (*cn != username)
    return fail(Errc::invalid_request, "the CSR's CN '" + *cn + "' must equal the certificate's CN '" + username + "'");
  if (crypto::public_key_der(csr->public_key()) == crypto::public_key_der(current->public_key()))
    return fail(Errc::invalid_request, "the CSR must carry a new key, not the one of the current certificate");

  auto group = store_.find_group((*known)->group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::internal, "the node's group '" + (*known)->group + "' no longer exists");
  return issue(*csr, username, **group, now, [&](const store::CertificateRecord& cert) {
    return store_.record_renewal(serial, cert, now);
  });
}

std::string Authority::roots_pem() const { return signer_.root().to_pem(); }

Result<void> Authority::health() {
  if (auto r = store_.ping(); !r) return r;
  if (auto r = directory_.ping(); !r)
    return fail(Errc::unavailable, "the XMPP directory does not answer: " + r.error().detail);
  return {};
}

}  // namespace evpn::ca::authority
