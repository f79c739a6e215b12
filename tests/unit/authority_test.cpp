#include "ca-service/authority/authority.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/protocol/lifetime.hpp"
#include "tests/support/captured_log.hpp"
#include "tests/unit/ca_fixture.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>

#include <openssl/x509.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using namespace evpn;
using namespace evpn::test::ca_fixture;
using evpn::ca::authority::Issued;

using evpn::test::ok;

namespace {

const std::string kRefused = "the enrollment token is unknown, expired or used up; ask the operator for a new one";
// The directory steps of a first enrollment (a new account) and of a renewal (the CA's own account).
const std::vector<std::string> kProvisioning = {"user_exists node1", "create_user node1", "ensure_group lab",
                                                "add_member node1 lab"};
const std::vector<std::string> kReassertion = {"ensure_group lab", "create_user node1", "add_member node1 lab"};

// A CSR with a CN that is present but empty, which Csr::create rightly cannot build.
std::string csr_with_empty_cn(const crypto::Key& key) {
  crypto::X509Req req(X509_REQ_new());
  REQUIRE(req);
  REQUIRE(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, V_ASN1_UTF8STRING,
                                     reinterpret_cast<const unsigned char*>(""), 0, -1, 0) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0);
  const auto der = crypto::to_der(i2d_X509_REQ, req.get());
  REQUIRE(der);
  return ok(crypto::Csr::from_der(*der)).to_pem();
}

// A CSR whose signature no longer matches its content: the last DER byte (part of the ECDSA
// signature's s value) is flipped.
std::string with_corrupted_signature(const std::string& csr_pem) {
  std::string bytes = ok(crypto::Csr::from_pem(csr_pem)).der();
  bytes.back() = static_cast<char>(bytes.back() ^ 0x01);
  return ok(crypto::Csr::from_der(bytes)).to_pem();
}

// Lets two threads continue only once both have arrived; the timeout only keeps a bug from hanging
// the test.
class Meeting {
 public:
  void arrive() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    ready_.notify_all();
    ready_.wait_for(lock, 10s, [this] { return arrived_ >= 2; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  int arrived_ = 0;
};

// Runs `call(authority, 0)` through `ca` and, at the same moment, `call(authority, 1)` through a
// second Authority on another connection to the same store `db`. Both requests pass every check
// and meet at add_member before either records, so the store alone decides. Returns both results.
std::pair<Result<Issued>, Result<Issued>> race(Ca& ca, const std::filesystem::path& db,
                                               const std::function<Result<Issued>(Authority&, int)>& call) {
  Replica replica(db);
  Authority& second = replica.authority;
  Meeting meeting;
  for (FakeDirectory* d : {&ca.directory, &replica.directory})
    d->on_call = [&](const std::string& step) {
      if (step == "add_member") meeting.arrive();
    };
  std::optional<Result<Issued>> r1, r2;
  std::thread t1([&] { r1.emplace(call(ca.authority, 0)); });
  std::thread t2([&] { r2.emplace(call(second, 1)); });
  t1.join();
  t2.join();
  return {std::move(*r1), std::move(*r2)};
}

}  // namespace

TEST_CASE("a valid enrollment provisions the directory, then issues and records a certificate for the CSR's key") {
  Ca ca;
  const std::string token = ca.token({.uses = 2});
  const std::string id = token_id(token);
  const crypto::Key key = ec_key();
  // Each directory step must happen while the store still shows nothing issued and nothing spent.
  std::vector<std::string> untouched_at;
  ca.directory.on_call = [&](const std::string& step) {
    if (ca.uses_left(id) == 2 && !ca.node("node1")) untouched_at.push_back(step);
  };

  const Issued issued = ok(ca.authority.enroll({token, csr_for(key, "node1")}, kNow));

  CHECK(ca.directory.calls == kProvisioning);
  CHECK(untouched_at == std::vector<std::string>{"user_exists", "create_user", "ensure_group", "add_member"});

  const auto& result = issued.result;
  const auto cert = ok(crypto::Certificate::from_pem(result.certificate));
  CHECK(cert.matches(key));
  CHECK(cert.common_name() == "node1");
  CHECK(cert.xmpp_addrs() == std::vector<std::string>{"node1@example.test"});
  CHECK(cert.serial_hex() == result.serial);
  CHECK(crypto::verify_chain(cert, ok(crypto::parse_pem_bundle(pki().root_pem())), kNow,
                             X509_PURPOSE_SSL_CLIENT));

  const auto record = ca.certificate(result.serial);
  REQUIRE(record);
  CHECK(record->username == "node1");
  CHECK(record->group == "lab");
  CHECK(record->status == evpn::ca::store::CertificateStatus::active);
  CHECK(record->pem == result.certificate);
  CHECK(record->issued_at == kNow);
  const auto node = ca.node("node1");
  REQUIRE(node);
  CHECK(node->current_serial == result.serial);
  CHECK(node->group == "lab");
  CHECK(ca.uses_left(id) == 1);

  CHECK(issued.token_id == id);
  CHECK(result.root == pki().root_pem());
  CHECK(result.chain.empty());
  CHECK(result.node.username == "node1");
  CHECK(result.node.jid == "node1@example.test");
  CHECK(result.node.group == "lab");
  CHECK(result.node.overlay == "overlay1");
  CHECK(result.xmpp.host == "xmpp.example.test");
  CHECK(result.xmpp.port == 5222);
  CHECK(result.xmpp.domain == "example.test");
  CHECK(result.xmpp.transport == "starttls");
  CHECK(result.not_before == to_rfc3339(kNow - 5min));
  CHECK(result.not_after == to_rfc3339(kNow + kLabLifetime));
  CHECK(result.renew_after == to_rfc3339(kNow + kLabLifetime * 2 / 3));
  CHECK(result.server_time == to_rfc3339(kNow));
}

TEST_CASE("enrollment takes the certificate lifetime from the token's group") {
  Ca ca;
  const auto result = ok(ca.authority.enroll({ca.token({.group = "prod"}), csr_for(ec_key(), "node1")}, kNow)).result;
  CHECK(result.node.group == "prod");
  CHECK(result.node.overlay == "overlay2");
  CHECK(result.not_after == to_rfc3339(kNow + std::chrono::days(7)));
  CHECK(ok(crypto::Certificate::from_pem(result.certificate)).not_after() == kNow + std::chrono::days(7));
}

TEST_CASE("enrollment refuses a CSR that is not PEM, or whose signature does not verify, and spends nothing") {
  Ca ca;
  const std::string token = ca.token();

  SECTION("not PEM") {
    const Error e = ca.refused({token, "-----BEGIN CERTIFICATE REQUEST-----\nnonsense\n"});
    CHECK(e.code == Errc::invalid_request);
  }
  SECTION("a corrupted signature") {
    const Error e = ca.refused({token, with_corrupted_signature(csr_for(ec_key(), "node1"))});
    CHECK(e.code == Errc::invalid_request);
    CHECK_THAT(e.detail, Catch::Contains("signature"));
  }
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("enrollment refuses an RSA-1024 key and spends nothing") {
  Ca ca;
  crypto::Key weak(crypto::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024})));
  REQUIRE(weak.get());
  const Error e = ca.refused({ca.token(), csr_for(weak, "node1")});
  CHECK(e.code == Errc::invalid_request);
  CHECK_THAT(e.detail, Catch::Contains("1024"));
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("enrollment applies the key policy before it verifies the signature") {
  Ca ca;
  // RSA with e=3 is refused by the key policy, whatever the signature says.
  const crypto::Key e3 = test::rsa_key_with_exponent(3);
  const Error e = ca.refused({ca.token(), with_corrupted_signature(csr_for(e3, "node1"))});
  CHECK(e.code == Errc::invalid_request);
  CHECK_THAT(e.detail, Catch::Contains("public exponent 3"));
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("enrollment refuses a CN that is not a valid username and spends nothing") {
  Ca ca;
  const std::string token = ca.token();
  const std::string cn = GENERATE(as<std::string>{}, "Node1", "a/b", "..", "");
  const crypto::Key key = ec_key();
  const Error e = ca.refused({token, cn.empty() ? csr_with_empty_cn(key) : csr_for(key, cn)}, cn);
  CHECK(e.code == Errc::invalid_request);
  CHECK_THAT(e.detail, Catch::StartsWith("the CSR's CN: "));
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("enrollment refuses unknown, wrong, expired and used-up tokens alike and spends nothing") {
  Ca ca;
  const std::string valid = ca.token({.uses = 3});
  const std::string id = token_id(valid);
  const std::string secret = valid.substr(valid.size() - 64);
  const std::string csr = csr_for(ec_key(), "node1");

  std::string presented;
  SECTION("unknown id") { presented = "evpn1_0123456789abcdef_" + secret; }
  SECTION("wrong secret") { presented = "evpn1_" + id + "_" + std::string(64, 'a'); }
  SECTION("expired") { presented = ca.token({.created_at = kNow - 2h, .ttl = 1h}); }
  SECTION("used up") { presented = ca.token({.uses = 0}); }

  const Error e = ca.refused({presented, csr});
  CHECK(e.code == Errc::unauthorized);
  CHECK(e.detail == kRefused);
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("an enrollment repeated after its answer was lost gets the same certificate and spends nothing") {
  Ca ca;
  const std::string token = ca.token({.uses = 1});
  const std::string id = token_id(token);
  const crypto::Key key = ec_key();
  const std::string csr = csr_for(key, "node1");
  const Issued first = ok(ca.authority.enroll({token, csr}, kNow));
  REQUIRE(ca.uses_left(id) == 0);

  // The same token, name and key: the same request, answered again.
  const Issued again = ok(ca.authority.enroll({token, csr_for(key, "node1")}, kNow + 30s));
  CHECK(again.result.serial == first.result.serial);
  CHECK(again.result.certificate == first.result.certificate);
  CHECK(again.result.renew_after == first.result.renew_after);
  CHECK(again.result.server_time == to_rfc3339(kNow + 30s));
  CHECK(ca.uses_left(id) == 0);
  CHECK(ca.current_serial("node1") == first.result.serial);

  // Another key, or the right key with a wrong secret, is a new request for a used-up token.
  CHECK(ca.refused({token, csr_for(ec_key(), "node1")}).detail == kRefused);
  CHECK(ca.refused({"evpn1_" + id + "_" + std::string(64, 'a'), csr}).detail == kRefused);
}

TEST_CASE("enrollment refuses a malformed token as unauthorized without repeating it") {
  Ca ca;
  ca.token();
  const std::string malformed = "evpn1_not-a-token";
  const Error e = ca.refused({malformed, csr_for(ec_key(), "node1")});
  CHECK(e.code == Errc::unauthorized);
  CHECK(e.detail.find(malformed) == std::string::npos);
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("enrollment refuses a token pinned to another username, naming both names") {
  Ca ca;
  const Error e = ca.refused({ca.token({.username = "node2"}), csr_for(ec_key(), "node1")});
  CHECK(e.code == Errc::forbidden);
  CHECK_THAT(e.detail, Catch::Contains("'node2'") && Catch::Contains("'node1'"));
  CHECK_FALSE(ca.node("node2"));
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("a directory failure at any step issues nothing, spends nothing and stops provisioning there") {
  Ca ca;
  const auto failing = GENERATE(0u, 1u, 2u, 3u);
  const std::vector<std::string> steps = {"user_exists", "create_user", "ensure_group", "add_member"};
  ca.directory.fail_at = steps[failing];

  const Error e = ca.refused({ca.token(), csr_for(ec_key(), "node1")});

  CHECK(e.code == Errc::unavailable);
  CHECK_THAT(e.detail, Catch::Matches(".*nothing was issued and (no|the) token was (not )?spent.*"));
  CHECK(ca.directory.calls ==
        std::vector<std::string>(kProvisioning.begin(), kProvisioning.begin() + failing + 1));
}

TEST_CASE("a username enrolled in one group cannot be enrolled in another") {
  Ca ca;
  ok(ca.authority.enroll({ca.token({.username = "node1"}), csr_for(ec_key(), "node1")}, kNow));
  ca.directory.calls.clear();

  const Error e = ca.refused({ca.token({.group = "prod", .username = "node1"}), csr_for(ec_key(), "node1")});

  CHECK(e.code == Errc::conflict);
  CHECK_THAT(e.detail, Catch::Contains("'lab'"));
  const auto node = ca.node("node1");
  REQUIRE(node);
  CHECK(node->group == "lab");
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("a live username cannot be taken over with a token that is not pinned to it") {
  Ca ca;
  ok(ca.authority.enroll({ca.token(), csr_for(ec_key(), "node1")}, kNow));
  ca.directory.calls.clear();

  const Error e = ca.refused({ca.token(), csr_for(ec_key(), "node1")});

  CHECK(e.code == Errc::conflict);
  CHECK_THAT(e.detail, Catch::Contains("--username node1"));
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("a token pinned to a live username re-enrolls it and supersedes the old certificate") {
  Ca ca;
  const auto first = ok(ca.authority.enroll({ca.token(), csr_for(ec_key(), "node1")}, kNow)).result;
  const crypto::Key new_key = ec_key();
  const std::string pinned = ca.token({.username = "node1"});

  const auto second = ok(ca.authority.enroll({pinned, csr_for(new_key, "node1")}, kNow + 1h)).result;

  CHECK(second.serial != first.serial);
  CHECK(ok(crypto::Certificate::from_pem(second.certificate)).matches(new_key));
  CHECK(ca.current_serial("node1") == second.serial);
  const auto old_record = ca.certificate(first.serial), new_record = ca.certificate(second.serial);
  REQUIRE(old_record);
  REQUIRE(new_record);
  CHECK(old_record->status == evpn::ca::store::CertificateStatus::superseded);
  CHECK(new_record->status == evpn::ca::store::CertificateStatus::active);
  CHECK(ca.uses_left(token_id(pinned)) == 0);
}

TEST_CASE("two requests racing for a token's last use get one certificate and one refusal") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  const std::string token = first.token();
  const std::string csrs[] = {csr_for(ec_key(), "node1"), csr_for(ec_key(), "node2")};

  const auto [r1, r2] = race(first, db, [&](Authority& a, int i) { return a.enroll({token, csrs[i]}, kNow); });
  REQUIRE(r1.has_value() != r2.has_value());
  const Result<Issued>& won = r1.has_value() ? r1 : r2;
  const Result<Issued>& lost = r1.has_value() ? r2 : r1;
  const std::string winner = r1.has_value() ? "node1" : "node2";
  const std::string loser = r1.has_value() ? "node2" : "node1";
  CHECK(lost.error().code == Errc::unauthorized);
  CHECK(lost.error().detail == kRefused);
  CHECK(first.current_serial(winner) == won->result.serial);
  CHECK(first.certificate(won->result.serial));
  CHECK_FALSE(first.node(loser));
  CHECK(first.uses_left(token_id(token)) == 0);
}

TEST_CASE("health is ok while the store and directory answer, unavailable when the directory does not") {
  Ca ca;
  CHECK(ca.authority.health());
  ca.directory.ping_fails = true;
  test::CapturedLog log;
  const auto r = ca.authority.health();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::unavailable);
  CHECK(r.error().detail == "the XMPP directory does not answer");
  CHECK_THAT(log.text.str(), Catch::Contains(kDirectoryDown));
}

namespace {

std::vector<std::string> audit_actions(Ca& ca, const std::string& username) {
  std::vector<std::string> actions;
  for (const auto& entry : ok(ca.store.list_audit()))
    if (entry.username == username) actions.push_back(entry.action);
  return actions;
}

// Runs `action` on another thread and blocks the caller until `done()` holds: a step that must
// happen while the caller is inside a directory call, whatever the scheduling.
template <class Action, class Done>
std::thread meanwhile(Action action, Done done) {
  std::thread other(std::move(action));
  while (!done()) std::this_thread::sleep_for(1ms);
  return other;
}

// The error of a renewal that must be refused, after checking that the node kept its current
// certificate, still active, and that nothing was provisioned.
Error renewal_refused(Ca& ca, const std::string& csr, const crypto::Certificate* current, TimePoint at,
                      const std::string& username = "node1") {
  const auto serial_before = ca.current_serial(username);
  ca.directory.calls.clear();

  auto result = ca.authority.renew({csr}, current, at);
  REQUIRE_FALSE(result);

  CHECK(ca.current_serial(username) == serial_before);
  if (serial_before) CHECK(ca.certificate(*serial_before)->status == evpn::ca::store::CertificateStatus::active);
  CHECK(ca.directory.calls.empty());
  return result.error();
}

}  // namespace

TEST_CASE("renewal re-asserts the directory, then issues a certificate for the new key and makes it current") {
  Ca ca;
  const std::string token = ca.token({.uses = 2});
  const crypto::Key old_key = ec_key();
  const auto first = ok(ca.authority.enroll({token, csr_for(old_key, "node1")}, kNow)).result;
  const auto old_cert = ok(crypto::Certificate::from_pem(first.certificate));
  ca.directory.calls.clear();
  const crypto::Key new_key = ec_key();
  const TimePoint later = kNow + std::chrono::days(21);

  const Issued issued = ok(ca.authority.renew({csr_for(new_key, "node1")}, &old_cert, later));

  // The user and membership are made right again before signing: renewal repairs drift.
  CHECK(ca.directory.calls == kReassertion);
  const auto& result = issued.result;
  CHECK(issued.token_id.empty());
  CHECK(result.serial != first.serial);
  const auto cert = ok(crypto::Certificate::from_pem(result.certificate));
  CHECK(cert.matches(new_key));
  CHECK_FALSE(cert.matches(old_key));
  CHECK(cert.common_name() == "node1");
  CHECK(cert.xmpp_addrs() == std::vector<std::string>{"node1@example.test"});
  CHECK(crypto::verify_chain(cert, ok(crypto::parse_pem_bundle(pki().root_pem())), later,
                             X509_PURPOSE_SSL_CLIENT));
  CHECK(result.node.group == "lab");
  CHECK(result.node.overlay == "overlay1");
  CHECK(result.not_after == to_rfc3339(later + kLabLifetime));
  CHECK(result.renew_after == to_rfc3339(later + kLabLifetime * 2 / 3));
  CHECK(result.server_time == to_rfc3339(later));

  CHECK(ca.current_serial("node1") == result.serial);
  CHECK(ca.certificate(first.serial)->status == evpn::ca::store::CertificateStatus::superseded);
  CHECK(ca.certificate(result.serial)->status == evpn::ca::store::CertificateStatus::active);
  CHECK(ca.certificate(result.serial)->issued_at == later);
  // Renewal needs no token: the one used to enroll keeps its remaining use.
  CHECK(ca.uses_left(token_id(token)) == 1);
}

TEST_CASE("renewal takes the lifetime from the node's group") {
  Ca ca;
  crypto::Key key = ec_key();
  const auto first = ok(ca.authority.enroll({ca.token({.group = "prod"}), csr_for(key, "node1")}, kNow)).result;
  const auto cert = ok(crypto::Certificate::from_pem(first.certificate));
  const auto renewed = ok(ca.authority.renew({csr_for(ec_key(), "node1")}, &cert, kNow + 1h)).result;
  CHECK(renewed.node.group == "prod");
  CHECK(renewed.not_after == to_rfc3339(kNow + 1h + std::chrono::days(7)));
}

TEST_CASE("renewal refuses a request without a client certificate") {
  Ca ca;
  enroll_node(ca, "node1");
  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), nullptr, kNow);
  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains("client certificate"));
}

TEST_CASE("renewal refuses a certificate from a foreign CA for the same username") {
  Ca ca;
  enroll_node(ca, "node1");
  const test::TestPki foreign;
  const auto pair = foreign.node("node1", kXmpp.domain);
  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), &pair.cert, kNow);
  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains("cannot renew"));
}

TEST_CASE("renewal refuses a certificate this CA signed but never recorded") {
  Ca ca;
  enroll_node(ca, "node1");
  // Same root, same profile, but not in the store (e.g. from a restored backup of another CA).
  const auto pair = pki().node("node1", kXmpp.domain);
  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), &pair.cert, kNow);
  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains(pair.cert.serial_hex()));
}

TEST_CASE("renewal refuses an expired certificate, which needs a new enrollment") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), &node.cert, node.cert.not_after() + 1s);
  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains("enrollment"));
  // One second before it expires the same certificate still renews.
  CHECK(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, node.cert.not_after() - 1s));
}

TEST_CASE("renewal refuses a certificate that is no longer the node's current one") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const auto renewed = ok(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow)).result;

  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), &node.cert, kNow);

  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains(node.serial) && Catch::Contains("superseded"));
  CHECK(ca.current_serial("node1") == renewed.serial);
}

TEST_CASE("renewal refuses a CSR with the current key, another CN or a bad signature, saying why") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");

  SECTION("the current key") {
    const Error e = renewal_refused(ca, csr_for(node.key, "node1"), &node.cert, kNow);
    CHECK(e.code == Errc::invalid_request);
    CHECK_THAT(e.detail, Catch::Contains("new key"));
  }
  SECTION("another CN") {
    const Error e = renewal_refused(ca, csr_for(ec_key(), "node2"), &node.cert, kNow);
    CHECK(e.code == Errc::invalid_request);
    CHECK_THAT(e.detail, Catch::Contains("'node2'") && Catch::Contains("'node1'"));
    CHECK_FALSE(ca.node("node2"));
  }
  SECTION("a corrupted signature") {
    const Error e = renewal_refused(ca, with_corrupted_signature(csr_for(ec_key(), "node1")), &node.cert, kNow);
    CHECK(e.code == Errc::invalid_request);
    CHECK_THAT(e.detail, Catch::Contains("signature"));
  }
}

TEST_CASE("a directory failure during renewal issues nothing and keeps the current certificate") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const auto failing = GENERATE(0u, 1u, 2u);
  ca.directory.calls.clear();
  ca.directory.fail_at = std::vector<std::string>{"ensure_group", "create_user", "add_member"}[failing];

  auto result = ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow);

  REQUIRE_FALSE(result);
  CHECK(result.error().code == Errc::unavailable);
  CHECK(ca.directory.calls == std::vector<std::string>(kReassertion.begin(), kReassertion.begin() + failing + 1));
  CHECK(ca.current_serial("node1") == node.serial);
  CHECK(ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::active);
  // The same certificate renews once the directory answers again.
  ca.directory.fail_at.clear();
  CHECK(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow));
}

TEST_CASE("two renewals racing with the same certificate get one new certificate and one refusal") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  const Enrolled node = enroll_node(first, "node1");
  const std::string csrs[] = {csr_for(ec_key(), "node1"), csr_for(ec_key(), "node1")};

  const auto [r1, r2] = race(first, db, [&](Authority& a, int i) { return a.renew({csrs[i]}, &node.cert, kNow); });
  REQUIRE(r1.has_value() != r2.has_value());
  const Result<Issued>& won = r1.has_value() ? r1 : r2;
  const Result<Issued>& lost = r1.has_value() ? r2 : r1;
  CHECK(lost.error().code == Errc::unauthorized);
  CHECK(first.current_serial("node1") == won->result.serial);
  CHECK(first.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::superseded);
}

namespace {

std::vector<ca::store::PendingLockout> pending_lockouts(Ca& ca) { return ok(ca.store.pending_lockouts()); }

// A serial as `openssl x509 -serial` prints it: upper case, with the colons of other tools.
std::string shouted(const std::string& serial) {
  std::string out;
  for (char c : serial) out += (out.empty() ? "" : ":") + std::string(1, static_cast<char>(std::toupper(c)));
  return out;
}

}  // namespace

TEST_CASE("revoking a node revokes its current certificate, locks it out in the directory and refuses its renewal") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ca.directory.calls.clear();

  const auto revoked = ok(ca.authority.revoke({.username = "node1", .reason = "keyCompromise"}, kNow + 1h));

  CHECK(revoked.revocation.serial == node.serial);
  CHECK(revoked.revocation.lockout_queued);
  CHECK_FALSE(revoked.lockout_error);
  CHECK(ca.directory.calls == std::vector<std::string>{"disable_user node1"});
  CHECK(pending_lockouts(ca).empty());
  CHECK(ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::revoked);

  auto renewal = ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow + 2h);
  REQUIRE_FALSE(renewal);
  CHECK(renewal.error().code == Errc::unauthorized);
  CHECK_THAT(renewal.error().detail, Catch::Contains(node.serial) && Catch::Contains("revoked"));
  CHECK(ca.current_serial("node1") == node.serial);
}

TEST_CASE("a revocation whose lockout fails is recorded, and the lockout is retried until it succeeds") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ca.directory.fail_at = "disable_user";

  const auto revoked = ok(ca.authority.revoke({.username = "node1"}, kNow));
  REQUIRE(revoked.lockout_error);
  CHECK(revoked.lockout_error->code == Errc::unavailable);
  CHECK(ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::revoked);
  auto queued = pending_lockouts(ca);
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].attempts == 1);
  CHECK_THAT(queued[0].last_error, Catch::Contains("connection refused"));

  CHECK(ok(ca.authority.enforce_lockouts(kNow)) == 1);
  CHECK(pending_lockouts(ca)[0].attempts == 2);

  ca.directory.fail_at.clear();
  ca.directory.calls.clear();
  CHECK(ok(ca.authority.enforce_lockouts(kNow)) == 0);
  CHECK(ca.directory.calls == std::vector<std::string>{"disable_user node1"});
  CHECK(pending_lockouts(ca).empty());
}

TEST_CASE("revoking a superseded certificate by serial lists it in the CRL but leaves its node's access alone") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const auto renewed = ok(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow)).result;
  ca.directory.calls.clear();

  const auto revoked = ok(ca.authority.revoke({.serial = shouted(node.serial), .reason = "superseded"}, kNow));

  CHECK(revoked.revocation.serial == node.serial);
  CHECK_FALSE(revoked.revocation.lockout_queued);
  CHECK(ca.directory.calls.empty());
  CHECK(ca.node("node1")->status == evpn::ca::store::CertificateStatus::active);
  CHECK(ca.current_serial("node1") == renewed.serial);
}

TEST_CASE("revoke refuses an unknown reason, both or neither target, and unknown names, changing nothing") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  CHECK(ca.authority.revoke({.username = "node1", .reason = "certificateHold"}, kNow).error().code ==
        Errc::invalid_request);
  CHECK(ca.authority.revoke({.username = "node1", .serial = node.serial}, kNow).error().code ==
        Errc::invalid_request);
  CHECK(ca.authority.revoke({}, kNow).error().code == Errc::invalid_request);
  CHECK(ca.authority.revoke({.username = "node9"}, kNow).error().code == Errc::not_found);
  CHECK(ca.authority.revoke({.serial = "abc"}, kNow).error().code == Errc::not_found);
  CHECK(ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::active);
  CHECK(ok(ca.store.list_revocations()).empty());
}

TEST_CASE("a revoked username cannot enroll again until its revoked certificate has expired") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ok(ca.authority.revoke({.username = "node1"}, kNow));
  const std::string token = ca.token({.username = "node1", .ttl = std::chrono::days(60)});

  const Error e = ca.refused({token, csr_for(ec_key(), "node1")});
  CHECK(e.code == Errc::forbidden);
  CHECK_THAT(e.detail, Catch::Contains("revoked") && Catch::Contains(to_rfc3339(node.cert.not_after())));

  REQUIRE(ca.directory.locked.contains("node1"));
  const TimePoint after = node.cert.not_after() + 1s;
  const auto again = ok(ca.authority.enroll({token, csr_for(ec_key(), "node1")}, after)).result;
  CHECK(ca.current_serial("node1") == again.serial);
  CHECK(ca.node("node1")->status == evpn::ca::store::CertificateStatus::active);
  // The operator's new token is what lifts the lockout, and the audit log says so.
  CHECK_FALSE(ca.directory.locked.contains("node1"));
  CHECK(audit_actions(ca, "node1") ==
        std::vector<std::string>{"account-create", "enroll", "revoke", "lockout", "token-create", "lockout-lift",
                                 "enroll"});
}

namespace {

struct CrlSeen {
  std::int64_t number = 0;
  int entries = 0;
};

CrlSeen read_crl(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(crl);
  auto* n = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
  REQUIRE(n);
  CrlSeen seen;
  ASN1_INTEGER_get_int64(&seen.number, n);
  ASN1_INTEGER_free(n);
  const auto* revoked = X509_CRL_get_REVOKED(crl.get());
  seen.entries = revoked ? sk_X509_REVOKED_num(revoked) : 0;
  return seen;
}

std::int64_t number(const std::string& der) { return read_crl(der).number; }

}  // namespace

TEST_CASE("a CRL signed in the second of a revocation gets a higher number than one signed before it") {
  Ca ca;
  enroll_node(ca, "node1");
  const auto before = number(ok(ca.authority.crl(kNow)));
  ok(ca.authority.revoke({.username = "node1"}, kNow));
  const auto after = number(ok(ca.authority.crl(kNow)));
  CHECK(before == to_unix(kNow));
  CHECK(after > before);
  // Unchanged, the CRL is signed again only once half its validity has passed.
  CHECK(number(ok(ca.authority.crl(kNow + 1h))) == after);
  const TimePoint later = kNow + ca::authority::crl_validity / 2;
  CHECK(number(ok(ca.authority.crl(later))) == to_unix(later));
}

TEST_CASE("node_state tells active, expiring, expired and revoked apart") {
  using ca::authority::NodeState;
  ca::store::NodeRecord node{"node1", "lab", "01", kNow + std::chrono::days(30)};
  // Issued at kNow: the CA backdates notBefore.
  node.not_before = kNow - protocol::issuance_backdate;
  CHECK(ca::authority::node_state(node, kNow) == NodeState::active);
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(19)) == NodeState::active);
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(20)) == NodeState::expiring);
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(30)) == NodeState::expired);
  node.status = ca::store::CertificateStatus::revoked;
  CHECK(ca::authority::node_state(node, kNow) == NodeState::revoked);
  CHECK(to_string(NodeState::expiring) == "expiring");
}

TEST_CASE("an account on the XMPP server that the CA did not create is refused with account_exists, untouched") {
  Ca ca;
  ca.directory.users = {"node1"};
  const std::string pinned = ca.token({.username = "node1"});

  for (const std::string& token : {ca.token(), pinned}) {
    ca.directory.calls.clear();
    const Error e = ca.refused({token, csr_for(ec_key(), "node1")});
    CHECK(e.code == Errc::account_exists);
    CHECK_THAT(e.detail, Catch::Contains("--username node1 --adopt-existing"));
    // Asked whether it exists, and nothing else: no group, no membership, no lockout change.
    CHECK(ca.directory.calls == std::vector<std::string>{"user_exists node1"});
  }
  CHECK_FALSE(ok(ca.store.owns_account("node1")));
  CHECK_FALSE(ca.node("node1"));
}

TEST_CASE("an account created by someone else between the CA's check and its own create is refused") {
  Ca ca;
  ca.directory.on_call = [&](const std::string& step) {
    if (step == "create_user") ca.directory.users.insert("node1");
  };

  const Error e = ca.refused({ca.token(), csr_for(ec_key(), "node1")});

  CHECK(e.code == Errc::account_exists);
  CHECK(ca.directory.calls == std::vector<std::string>{"user_exists node1", "create_user node1"});
  CHECK_FALSE(ok(ca.store.owns_account("node1")));
}

TEST_CASE("a token made with --adopt-existing for the name adopts the existing account, with an audit entry") {
  Ca ca;
  ca.directory.users = {"node1"};
  // The flag is the token's pinned name's only: an unpinned token cannot carry it into another name.
  const std::string token = ca.token({.username = "node1", .adopt_existing = true});

  ok(ca.authority.enroll({token, csr_for(ec_key(), "node1")}, kNow));

  CHECK(ca.directory.calls == std::vector<std::string>{"user_exists node1", "ensure_group lab", "add_member node1 lab"});
  CHECK(ok(ca.store.owns_account("node1")));
  CHECK(audit_actions(ca, "node1") == std::vector<std::string>{"token-create", "account-adopt", "enroll"});
}

TEST_CASE("with a directory that manages no accounts (none) enrollment records no account and asks nothing") {
  Ca ca;
  ca.directory.manages = false;

  ok(ca.authority.enroll({ca.token(), csr_for(ec_key(), "node1")}, kNow));

  CHECK(ca.directory.calls.empty());
  CHECK_FALSE(ok(ca.store.owns_account("node1")));
  CHECK(audit_actions(ca, "node1") == std::vector<std::string>{"enroll"});
  ca::DirectoryConfig none;
  none.type = ca::DirectoryType::none;
  CHECK_FALSE(ok(ca::xmpp::make_directory(none, "example.test"))->manages_accounts());
}

TEST_CASE("reserved usernames are refused for every token, before the directory is asked") {
  Ca ca;
  for (const std::string name : {"admin", "root", "postmaster"}) {
    ca.directory.calls.clear();
    const Error e = ca.refused({ca.token({.username = name, .adopt_existing = true}), csr_for(ec_key(), name)}, name);
    CHECK(e.code == Errc::forbidden);
    CHECK_THAT(e.detail, Catch::Contains("reserved"));
    CHECK(ca.directory.calls.empty());
  }
}

TEST_CASE("a renewal never lifts a lockout, whoever placed it") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ca.directory.locked = {"node1"};  // an operator locked the node out by hand

  ok(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow));

  CHECK(ca.directory.locked.contains("node1"));
  CHECK(ca.directory.calls.end() ==
        std::find(ca.directory.calls.begin(), ca.directory.calls.end(), "lift_lockout node1"));
}

TEST_CASE("a renewal racing with its node's revocation is refused at commit and leaves the node locked out") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  std::thread revoker;
  bool revoked_meanwhile = false;
  // The revocation commits while the renewal, past its "active" check, is inside the directory.
  ca.directory.on_call = [&](const std::string& step) {
    if (step != "add_member" || revoked_meanwhile) return;
    revoked_meanwhile = true;
    revoker = meanwhile([&] { ok(ca.authority.revoke({.username = "node1"}, kNow)); },
                        [&] { return ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::revoked; });
  };

  auto renewal = ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow);
  revoker.join();

  REQUIRE(revoked_meanwhile);
  REQUIRE_FALSE(renewal);
  CHECK(renewal.error().code == Errc::unauthorized);
  CHECK(ca.current_serial("node1") == node.serial);
  CHECK(ca.directory.locked.contains("node1"));
  CHECK(pending_lockouts(ca).empty());
}

TEST_CASE("a re-enrollment racing with the revocation of the name is refused at commit and spends nothing") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const std::string pinned = ca.token({.username = "node1"});
  std::thread revoker;
  ca.directory.on_call = [&](const std::string& step) {
    if (step != "add_member" || revoker.joinable()) return;
    revoker = meanwhile([&] { ok(ca.authority.revoke({.username = "node1"}, kNow)); },
                        [&] { return ca.certificate(node.serial)->status == evpn::ca::store::CertificateStatus::revoked; });
  };

  auto again = ca.authority.enroll({pinned, csr_for(ec_key(), "node1")}, kNow);
  revoker.join();

  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::forbidden);
  CHECK(ca.uses_left(token_id(pinned)) == 1);
  CHECK(ca.current_serial("node1") == node.serial);
  CHECK(ca.directory.locked.contains("node1"));
}

TEST_CASE("enforcing lockouts re-asserts every revoked node whose certificate is valid, and only those") {
  Ca ca;
  const Enrolled revoked = enroll_node(ca, "node1");
  enroll_node(ca, "node2");
  ok(ca.authority.revoke({.username = "node1"}, kNow));
  ca.directory.locked.clear();  // a lost race, or a hand, undid the lockout
  ca.directory.calls.clear();

  CHECK(ok(ca.authority.enforce_lockouts(kNow)) == 0);
  CHECK(ca.directory.calls == std::vector<std::string>{"disable_user node1"});
  CHECK(ca.directory.locked == std::set<std::string>{"node1"});

  // Once the revoked certificate has expired there is nothing left to keep out.
  ca.directory.calls.clear();
  CHECK(ok(ca.authority.enforce_lockouts(revoked.cert.not_after() + 1s)) == 0);
  CHECK(ca.directory.calls.empty());
}

TEST_CASE("a renewal repeated after its answer was lost gets the same certificate and changes nothing") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const crypto::Key new_key = ec_key();
  const std::string csr = csr_for(new_key, "node1");
  const auto first = ok(ca.authority.renew({csr}, &node.cert, kNow)).result;
  const auto version = ok(ca.store.data_version());
  ca.directory.calls.clear();

  // The node never saw the answer: it tries again with its old certificate and the same new key.
  const auto again = ok(ca.authority.renew({csr}, &node.cert, kNow + 1min)).result;

  CHECK(again.serial == first.serial);
  CHECK(again.certificate == first.certificate);
  CHECK(ca.current_serial("node1") == first.serial);
  CHECK(ca.directory.calls.empty());
  CHECK(ok(ca.store.data_version()) == version);
  // Another key is not a repeat: the old certificate is superseded and cannot renew.
  const Error e = renewal_refused(ca, csr_for(ec_key(), "node1"), &node.cert, kNow + 1min);
  CHECK(e.code == Errc::unauthorized);
  CHECK_THAT(e.detail, Catch::Contains("superseded"));
}

TEST_CASE("certificate_status tells current, superseded, revoked and expired apart for this CA's certificates") {
  using protocol::CertificateState;
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const auto status = [&](const crypto::Certificate& cert, TimePoint at) {
    const auto s = ok(ca.authority.certificate_status(&cert, at));
    CHECK(s.serial == cert.serial_hex());
    return s.status;
  };
  CHECK(status(node.cert, kNow) == CertificateState::current);
  CHECK(status(node.cert, node.cert.not_after()) == CertificateState::expired);

  // Renewed with another key: the old certificate is superseded, the new one current.
  const auto renewed = ok(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow)).result;
  const auto new_cert = ok(crypto::Certificate::from_pem(renewed.certificate));
  CHECK(status(node.cert, kNow) == CertificateState::superseded);
  CHECK(status(new_cert, kNow) == CertificateState::current);

  ok(ca.authority.revoke({.username = "node1"}, kNow + 1h));
  CHECK(status(new_cert, kNow + 2h) == CertificateState::revoked);
  // The store changed nothing for looking.
  CHECK(ca.current_serial("node1") == renewed.serial);
}

TEST_CASE("certificate_status refuses no certificate, a foreign one and one this CA signed but never recorded") {
  Ca ca;
  enroll_node(ca, "node1");
  const test::TestPki foreign;
  const auto foreign_pair = foreign.node("node1", kXmpp.domain);
  const auto unrecorded = pki().node("node1", kXmpp.domain);
  CHECK(test::error_of(ca.authority.certificate_status(nullptr, kNow)).code == Errc::unauthorized);
  for (const auto* cert : {&foreign_pair.cert, &unrecorded.cert}) {
    const Error e = test::error_of(ca.authority.certificate_status(cert, kNow));
    CHECK(e.code == Errc::unauthorized);
    CHECK_THAT(e.detail, Catch::Contains(cert->serial_hex()) && Catch::Contains("not issued by this CA"));
  }
}

TEST_CASE("CRLs that two CAs on one store sign take ever higher numbers and list every revocation before them") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  Replica second(db);
  std::vector<Enrolled> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(enroll_node(first, "node" + std::to_string(i)));

  std::int64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    Authority& revoker = i % 2 == 0 ? first.authority : second.authority;
    REQUIRE(revoker.revoke({.username = "node" + std::to_string(i)}, kNow));
    // Both sign in the same second as the revocation, one after the other.
    for (Authority* signer : {&first.authority, &second.authority}) {
      const CrlSeen crl = read_crl(ok(signer->crl(kNow)));
      CHECK(crl.number > last);
      CHECK(crl.entries == i + 1);
      last = crl.number;
    }
  }
}

TEST_CASE("a repeated enrollment or renewal whose answer was lost is answered again by another CA on the store") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  Replica second(db);
  const std::string token = first.token();
  const crypto::Key key = ec_key();
  const protocol::EnrollRequest request{token, csr_for(key, "node1")};
  const Issued enrolled = ok(first.authority.enroll(request, kNow));
  const Issued again = ok(second.authority.enroll(request, kNow + 1min));
  CHECK(again.result.serial == enrolled.result.serial);
  CHECK(first.uses_left(token_id(token)) == 0);

  const auto cert = ok(crypto::Certificate::from_pem(enrolled.result.certificate));
  const std::string renewal_csr = csr_for(ec_key(), "node1");
  const Issued renewed = ok(first.authority.renew({renewal_csr}, &cert, kNow + 1h));
  const Issued renewed_again = ok(second.authority.renew({renewal_csr}, &cert, kNow + 1h + 1min));
  CHECK(renewed_again.result.serial == renewed.result.serial);
  CHECK(first.current_serial("node1") == renewed.result.serial);
}

TEST_CASE("a revocation through one CA on the store is refused for renewal by the other at once") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  Replica second(db);
  const Enrolled node = enroll_node(first, "node1");
  REQUIRE(first.authority.revoke({.username = "node1", .reason = "keyCompromise"}, kNow));
  auto renewal = second.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow);
  REQUIRE_FALSE(renewal);
  CHECK(renewal.error().code == Errc::unauthorized);
  CHECK(first.current_serial("node1") == node.serial);
}

TEST_CASE("two CAs on one store never work the lockout queue at once; the other works it once the first is done") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  Replica second(db);
  enroll_node(first, "node1");
  first.directory.fail_at = "disable_user";
  REQUIRE(ok(first.authority.revoke({.username = "node1"}, kNow)).lockout_error);
  first.directory.fail_at.clear();
  first.directory.calls.clear();

  // The first CA is in the middle of the job (inside disable_user) when the second one's turn comes.
  std::mutex mutex;
  std::condition_variable changed;
  bool inside = false, release = false;
  first.directory.on_call = [&](const std::string& step) {
    if (step != "disable_user") return;
    std::unique_lock lock(mutex);
    inside = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
  };
  std::optional<Result<std::size_t>> first_result;
  std::thread worker([&] { first_result.emplace(first.authority.enforce_lockouts(kNow)); });
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return inside; });
  }
  CHECK(ok(second.authority.enforce_lockouts(kNow)) == 0);
  CHECK(second.directory.calls.empty());
  {
    std::lock_guard lock(mutex);
    release = true;
    changed.notify_all();
  }
  worker.join();
  CHECK(ok(*first_result) == 0);
  CHECK(first.directory.calls == std::vector<std::string>{"disable_user node1"});
  CHECK(ok(first.store.pending_lockouts()).empty());

  // Free again: the second CA re-asserts the lockout.
  CHECK(ok(second.authority.enforce_lockouts(kNow)) == 0);
  CHECK(second.directory.calls == std::vector<std::string>{"disable_user node1"});
}
