#include "ca-service/authority/authority.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/log.hpp"
#include "common/protocol/lifetime.hpp"

#include <algorithm>
#include <cctype>

namespace evpn::ca::authority {

namespace {

// The directory's own error (its address, its answer) goes to the log only: anyone may send a
// request, and the backend's address and words are the operator's business. The node is told
// the kind of failure and what it means for it.
Error directory_failure(const Error& e) {
  spdlog::warn("directory provisioning failed: {}", e.detail);
  const char* kind = e.code == Errc::unavailable
                         ? "is unreachable or failing"
                         : "refused the CA's request (the CA's directory settings need the operator's attention)";
  return fail(Errc::unavailable, std::string("the XMPP server's directory ") + kind +
                                     "; nothing was issued and no token was spent: retry later");
}

// "00:AB:cd" -> "abcd", the form Certificate::serial_hex() gives and the store keeps.
std::string normalize_serial(const std::string& text) {
  std::string serial;
  for (char c : text)
    if (c != ':') serial += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto digits = serial.find_first_not_of('0');
  return digits == std::string::npos ? "0" : serial.substr(digits);
}

// A CSR whose signature holds and whose key meets the policy; of it only the key is ever used.
Result<crypto::Csr> decode_csr(const std::string& pem) {
  auto csr = crypto::Csr::from_pem(pem);
  if (!csr) return csr.error();
  // The policy first: a signature is never computed with a key the CA would refuse anyway.
  if (auto r = crypto::check_key_policy(csr->public_key()); !r) return r.error();
  if (auto r = csr->verify_signature(); !r) return r.error();
  return csr;
}

Error account_exists(const std::string& username) {
  return fail(Errc::account_exists,
              "the XMPP server already has an account '" + username +
                  "' that evpn-ca did not create; nothing was issued and it was left untouched. Choose another "
                  "username, or, if that account is meant for this node, ask the operator for a token made with "
                  "`evpn-ca token create --username " + username + " --adopt-existing`");
}

bool same_key(const store::CertificateRecord& record, const crypto::Csr& csr) {
  auto cert = crypto::Certificate::from_pem(record.pem);
  return cert && crypto::same_public_key(cert->public_key(), csr.public_key());
}

}  // namespace

UsernameLocks::Guard::Guard(UsernameLocks& locks, std::string username)
    : locks_(locks), username_(std::move(username)) {
  std::unique_lock lock(locks_.mutex_);
  locks_.released_.wait(lock, [&] { return !locks_.held_.contains(username_); });
  locks_.held_.insert(username_);
}

UsernameLocks::Guard::~Guard() {
  {
    std::lock_guard lock(locks_.mutex_);
    locks_.held_.erase(username_);
  }
  locks_.released_.notify_all();
}

Authority::Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory, XmppConfig xmpp,
                     std::vector<std::string> reserved_usernames)
    : store_(store), signer_(signer), directory_(directory), xmpp_(std::move(xmpp)),
      reserved_usernames_(std::move(reserved_usernames)), roots_pem_(signer.root().to_pem()) {}

Result<bool> Authority::provision(const std::string& username, const std::string& group, const Provisioning& how,
                                  TimePoint now) {
  // With no directory there is no account: recording one as created would be false, and would make
  // the CA take a same-named account for its own should the config later name a real directory.
  if (!directory_.manages_accounts()) return false;
  // Whose account it is decides everything else, so it is settled before the directory is changed:
  // an account evpn-ca did not create (an administrator's, a person's) is never issued for, added to
  // a group or unlocked, unless the operator made a token to adopt it.
  auto owned = store_.owns_account(username);
  if (!owned) return owned.error();
  bool adopted = false;
  if (!*owned) {
    auto exists = directory_.user_exists(username);
    if (!exists) return directory_failure(exists.error());
    if (*exists && !how.may_adopt) return account_exists(username);
    adopted = *exists;
    if (!adopted) {
      // Someone may create the name between the check and here: a conflict is theirs, not ours.
      if (auto created = directory_.create_user(username); !created) {
        if (created.error().code == Errc::conflict) return account_exists(username);
        return directory_failure(created.error());
      }
      // Recorded at once: were it recorded only with the certificate, a failure in between would
      // leave an account the CA no longer recognised as its own.
      if (auto r = store_.record_account(username, now); !r) return r.error();
    }
  }
  if (auto r = directory_.ensure_group(group); !r) return directory_failure(r.error());
  if (*owned) {
    // Our own account, created again if someone removed it.
    if (auto created = directory_.create_user(username); !created && created.error().code != Errc::conflict)
      return directory_failure(created.error());
  }
  if (auto r = directory_.add_member(username, group); !r) return directory_failure(r.error());
  if (how.lift_lockout)
    if (auto r = directory_.lift_lockout(username); !r) return directory_failure(r.error());
  return adopted;
}

template <class Record>
Result<Issued> Authority::issue(const crypto::Csr& csr, const std::string& username, const store::GroupRecord& group,
                                const Provisioning& how, TimePoint now, Record record) {
  UsernameLocks::Guard guard(locks_, username);
  // The XMPP side is made right before anything is signed: a node never holds a certificate for
  // an account that does not exist.
  auto adopted = provision(username, group.name, how, now);
  if (!adopted) return adopted.error();

  auto cert = signer_.issue_node(csr.public_key(), {username, xmpp_.domain, group.lifetime}, now);
  if (!cert) return cert.error();
  store::CertificateRecord cert_record{cert->serial, username,        group.name, cert->not_before,
                                       cert->not_after, std::move(cert->pem), store::CertificateStatus::active, now};
  // Recording is the commit point: a concurrent request that won the race, or a revocation that
  // committed meanwhile, makes this one fail here, and its certificate is never handed out.
  if (auto r = record(cert_record, *adopted); !r) return r.error();

  return render(cert_record, group, now);
}

Issued Authority::render(const store::CertificateRecord& cert, const store::GroupRecord& group, TimePoint now) const {
  Issued issued;
  auto& out = issued.result;
  out.certificate = cert.pem;
  out.root = roots_pem_;
  out.serial = cert.serial;
  out.not_before = to_rfc3339(cert.not_before);
  out.not_after = to_rfc3339(cert.not_after);
  out.renew_after = to_rfc3339(protocol::renewal_due(cert.issued_at, cert.not_after));
  out.server_time = to_rfc3339(now);
  out.node = {cert.username, cert.username + "@" + xmpp_.domain, group.name, group.overlay};
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

  if (auto r = enrollment::check_not_reserved(*username, reserved_usernames_); !r) return r.error();

  auto token = enrollment::parse_token(request.token);
  if (!token) return token.error();
  auto record = store_.find_token(token->id);
  if (!record) return record.error();
  if (!*record) return fail(Errc::unauthorized, protocol::token_refused);
  if (auto replayed = replay(**record, *token, *csr, *username, now); !replayed || *replayed) {
    if (!replayed) return replayed.error();
    return std::move(**replayed);
  }
  if (auto r = enrollment::check_token(**record, *token, *username, now); !r) {
    spdlog::info("enrollment refused for token {}: {}", token->id, r.error().detail);
    return r.error();
  }
  auto group = store_.find_group((*record)->group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::internal, "the token's group '" + (*record)->group + "' does not exist");

  auto node = store_.find_node(*username);
  if (!node) return node.error();
  Provisioning how;
  how.may_adopt = (*record)->adopt_existing && (*record)->username == *username;
  store::EnrollmentCommit commit;
  if (*node) {
    const auto& existing = **node;
    // ejabberd and Openfire lock out a user, not a certificate: letting the name in again would
    // let the revoked certificate in with it for as long as that certificate is valid.
    if (existing.status == store::CertificateStatus::revoked && existing.not_after > now)
      return fail(Errc::forbidden, "username '" + *username +
                                       "' was revoked and its revoked certificate is valid until " +
                                       to_rfc3339(existing.not_after) +
                                       "; the XMPP server cannot tell it from a new one: enroll under another "
                                       "username, or after that time");
    if (existing.group != (*group)->name)
      return fail(Errc::conflict, "username '" + *username + "' is already enrolled in group '" + existing.group +
                                      "': choose another username");
    // Only a token made for this very name may take over a name that a live certificate holds.
    const bool live = existing.status == store::CertificateStatus::active && existing.not_after > now;
    if (live && (*record)->username != *username)
      return fail(Errc::conflict, "username '" + *username +
                                      "' is held by another node; to re-enroll it, use a token created with "
                                      "--username " + *username);
    commit.expected_current = existing.current_serial;
    // The only way a lockout is ever lifted: the name's revoked certificate has expired, and the
    // operator gave out a token that enrolls it (recorded in the audit log).
    how.lift_lockout = existing.status == store::CertificateStatus::revoked;
  }
  auto issued = issue(*csr, *username, **group, how, now, [&](const store::CertificateRecord& cert, bool adopted) {
    commit.adopts_account = adopted;
    commit.lifted_lockout = how.lift_lockout;
    return store_.record_enrollment(token->id, cert, now, commit);
  });
  if (issued) issued->token_id = token->id;
  return issued;
}

Result<std::optional<Issued>> Authority::replay(const store::TokenRecord& record,
                                                const enrollment::TokenParts& token, const crypto::Csr& csr,
                                                const std::string& username, TimePoint now) {
  // A retry of an enrollment whose answer was lost (the CA died, or the connection dropped, after
  // the commit) gets the same certificate again instead of spending another use: the same token
  // secret, the same name and the same public key make it the same request.
  if (!enrollment::secret_matches(record, token)) return std::optional<Issued>();
  auto earlier = store_.find_enrollment(record.id, username);
  if (!earlier) return earlier.error();
  if (!*earlier || (*earlier)->not_after <= now) return std::optional<Issued>();
  if (!same_key(**earlier, csr)) return std::optional<Issued>();
  auto group = store_.find_group((*earlier)->group);
  if (!group) return group.error();
  if (!*group) return std::optional<Issued>();
  spdlog::info("enrollment for token {} repeated: answering certificate {} again", record.id, (*earlier)->serial);
  Issued issued = render(**earlier, **group, now);
  issued.token_id = record.id;
  return std::optional<Issued>(std::move(issued));
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

  auto csr = decode_csr(request.csr);
  if (!csr) return csr.error();
  auto cn = csr->common_name();
  if (!cn) return cn.error();
  if (*cn != username)
    return fail(Errc::invalid_request, "the CSR's CN '" + *cn + "' must equal the certificate's CN '" + username + "'");
  if (crypto::same_public_key(csr->public_key(), current->public_key()))
    return fail(Errc::invalid_request, "the CSR must carry a new key, not the one of the current certificate");

  if ((*known)->status == store::CertificateStatus::superseded) {
    auto replayed = replay_renewal(**known, *csr, now);
    if (!replayed) return replayed.error();
    if (*replayed) return std::move(**replayed);
  }
  if ((*known)->status != store::CertificateStatus::active)
    return fail(Errc::unauthorized, "certificate " + serial + " is " + std::string(to_string((*known)->status)) +
                                        " and cannot renew" +
                                        ((*known)->status == store::CertificateStatus::revoked
                                             ? ": the operator revoked this node"
                                             : "; enroll again with a token"));

  auto group = store_.find_group((*known)->group);
  if (!group) return group.error();
  if (!*group) return fail(Errc::internal, "the node's group '" + (*known)->group + "' no longer exists");
  return issue(*csr, username, **group, {}, now, [&](const store::CertificateRecord& cert, bool) {
    return store_.record_renewal(serial, cert, now);
  });
}

Result<std::optional<Issued>> Authority::replay_renewal(const store::CertificateRecord& superseded,
                                                        const crypto::Csr& csr, TimePoint now) {
  // A node whose renewal answer was lost retries with the same (superseded) client certificate and
  // the same new key: it has proved both keys, and gets the certificate it was already issued.
  auto renewal = store_.find_renewal(superseded.serial);
  if (!renewal) return renewal.error();
  if (!*renewal || (*renewal)->status != store::CertificateStatus::active || (*renewal)->not_after <= now || !same_key(**renewal, csr))
    return std::optional<Issued>();
  auto group = store_.find_group((*renewal)->group);
  if (!group) return group.error();
  if (!*group) return std::optional<Issued>();
  spdlog::info("renewal of {} repeated: answering certificate {} again", superseded.serial, (*renewal)->serial);
  return std::optional<Issued>(render(**renewal, **group, now));
}

Result<protocol::CertificateStatus> Authority::certificate_status(const crypto::Certificate* presented,
                                                                 TimePoint now) {
  using protocol::CertificateState;
  if (!presented)
    return fail(Errc::unauthorized, "the status check needs the node's certificate as the TLS client certificate");
  const std::string serial = presented->serial_hex();
  const auto unknown = fail(Errc::unauthorized, "certificate " + serial + " was not issued by this CA");
  auto known = store_.find_certificate(serial);
  if (!known) return known.error();
  if (!*known) return unknown;
  // A serial alone could be copied into a certificate of another issuer: only the very bytes this
  // CA recorded count.
  auto recorded = crypto::Certificate::from_pem((*known)->pem);
  if (!recorded || recorded->to_der() != presented->to_der()) return unknown;

  protocol::CertificateStatus out{serial};
  const auto status = (*known)->status;
  if (status == store::CertificateStatus::revoked) {
    out.status = CertificateState::revoked;
  } else if (status == store::CertificateStatus::superseded) {
    out.status = CertificateState::superseded;
  } else {
    auto node = store_.find_node((*known)->username);
    if (!node) return node.error();
    if (!*node || (*node)->current_serial != serial)
      out.status = CertificateState::superseded;
    else
      out.status = (*known)->not_after <= now ? CertificateState::expired : CertificateState::current;
  }
  return out;
}

Result<Revoked> Authority::revoke(const RevokeRequest& request, TimePoint now) {
  if (request.username.empty() == request.serial.empty())
    return fail(Errc::invalid_request, "name either the node (username) or the certificate (serial) to revoke");
  if (auto code = signing::revocation_reason_code(request.reason); !code) return code.error();
  auto revocation = request.username.empty()
                        ? store_.revoke_certificate(normalize_serial(request.serial), request.reason, now)
                        : store_.revoke_node(request.username, request.reason, now);
  if (!revocation) return revocation.error();
  invalidate_crl();
  spdlog::info("revoked certificate {} of {} ({})", revocation->serial, revocation->username, revocation->reason);
  Revoked revoked{*revocation, std::nullopt};
  if (revocation->lockout_queued)
    if (auto r = lock_out(revocation->username, revocation->serial, now); !r) revoked.lockout_error = r.error();
  return revoked;
}

Result<void> Authority::lock_out(const std::string& username, const std::string& serial, TimePoint now) {
  UsernameLocks::Guard guard(locks_, username);
  if (auto disabled = directory_.disable_user(username); !disabled) {
    spdlog::warn("locking out {} in the directory failed, will retry: {}", username, disabled.error().detail);
    if (auto r = store_.record_lockout_failure(username, disabled.error().detail); !r) return r;
    return disabled;
  }
  spdlog::info("locked out {} in the directory", username);
  return store_.complete_lockout(username, serial, now);
}

Result<std::size_t> Authority::enforce_lockouts(TimePoint now) {
  // One process (replica) at a time works the queue: the others would only repeat its calls.
  Result<std::size_t> failed = std::size_t{0};
  auto ran = store_.run_exclusive([&] { failed = enforce_lockouts_now(now); });
  if (!ran) return ran.error();
  return failed;
}

Result<std::size_t> Authority::enforce_lockouts_now(TimePoint now) {
  auto pending = store_.pending_lockouts();
  if (!pending) return pending.error();
  std::size_t failed = 0;
  std::set<std::string> queued;
  for (const auto& lockout : *pending) {
    queued.insert(lockout.username);
    if (!lock_out(lockout.username, lockout.serial, now)) ++failed;
  }
  auto revoked = store_.locked_out_usernames(now);
  if (!revoked) return revoked.error();
  for (const auto& username : *revoked) {
    if (queued.contains(username)) continue;
    UsernameLocks::Guard guard(locks_, username);
    if (auto r = directory_.disable_user(username); !r) {
      spdlog::warn("re-asserting the lockout of revoked node {} failed: {}", username, r.error().detail);
      ++failed;
    }
  }
  return failed;
}

Result<std::string> Authority::crl(TimePoint now) {
  // Anyone may ask for the CRL: it is signed again only when it would change, or when half its
  // validity has passed, so that asking costs the CA no signature. The store's data_version tells
  // cheaply whether anyone (this process's writer or `evpn-ca revoke` in another) has committed
  // since; only then are the revocations read again.
  std::lock_guard lock(crl_mutex_);
  auto version = store_.data_version();
  if (!version) return version.error();
  const bool fresh = !crl_cache_.der.empty() && now - crl_cache_.signed_at < crl_validity / 2;
  if (fresh && crl_cache_.data_version == *version) return crl_cache_.der;
  auto revocations = store_.list_revocations();
  if (!revocations) return revocations.error();
  std::vector<signing::RevokedCertificate> entries;
  TimePoint latest{};
  for (const auto& r : *revocations) {
    entries.push_back({r.serial, r.revoked_at, r.reason});
    latest = std::max(latest, r.revoked_at);
  }
  // Revocations are never undone, so their number and the latest time tell a changed list.
  crl_cache_.data_version = *version;
  if (fresh && crl_cache_.revocations == entries.size() && crl_cache_.latest == latest) return crl_cache_.der;
  // The CRL number is the signing time when that is more than every number taken before; the store
  // hands it out with the revocations of that moment, so that two CRLs never share a number and a
  // higher number (from any replica) lists every revocation a lower one did.
  auto content = store_.take_crl_number(to_unix(now));
  if (!content) return content.error();
  entries.clear();
  latest = {};
  for (const auto& r : content->revocations) {
    entries.push_back({r.serial, r.revoked_at, r.reason});
    latest = std::max(latest, r.revoked_at);
  }
  auto der = signer_.make_crl(entries, content->number, now, crl_validity);
  if (!der) return der.error();
  crl_cache_ = {*der, now, *version, entries.size(), latest};
  return der;
}

std::string_view to_string(NodeState state) {
  switch (state) {
    case NodeState::active: return "active";
    case NodeState::expiring: return "expiring";
    case NodeState::expired: return "expired";
    case NodeState::revoked: return "revoked";
  }
  return "?";
}

NodeState node_state(const store::NodeRecord& node, TimePoint now) {
  if (node.status == store::CertificateStatus::revoked) return NodeState::revoked;
  if (node.not_after <= now) return NodeState::expired;
  if (now >= protocol::renewal_due(node.not_before + protocol::issuance_backdate, node.not_after))
    return NodeState::expiring;
  return NodeState::active;
}

Result<void> Authority::health() {
  // As for requests, the details are for the log; the answer names the part that failed.
  if (auto r = store_.ping(); !r) {
    spdlog::warn("health check: the store failed: {}", r.error().detail);
    return fail(Errc::unavailable, "the CA's store does not answer");
  }
  if (auto r = directory_.ping(); !r) {
    spdlog::warn("health check: the XMPP directory failed: {}", r.error().detail);
    return fail(Errc::unavailable, "the XMPP directory does not answer");
  }
  return {};
}

}  // namespace evpn::ca::authority
