#include "ca-service/api/routes.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/captured_log.hpp"
#include "tests/support/openfire_standin.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>

#include <openssl/x509.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

using namespace evpn;
using namespace std::chrono_literals;
using evpn::ca::authority::Authority;
using evpn::ca::authority::Issued;

using evpn::test::ok;

namespace {

namespace http = boost::beast::http;

const TimePoint kNow = now_seconds();
const ca::XmppConfig kXmpp{"example.test", "xmpp.example.test", 5222};
constexpr std::chrono::seconds kLabLifetime = std::chrono::days(30);
const std::string kRefused = "the enrollment token is unknown, expired or used up; ask the operator for a new one";
// The directory steps of a first enrollment (a new account) and of a renewal (the CA's own account).
const std::vector<std::string> kProvisioning = {"user_exists node1", "create_user node1", "ensure_group lab",
                                                "add_member node1 lab"};
const std::vector<std::string> kReassertion = {"ensure_group lab", "create_user node1", "add_member node1 lab"};

// One root for the whole run: every test's CA signs with it.
const test::TestPki& pki() {
  static const test::TestPki instance;
  return instance;
}

// What the directory stand-in says when it fails: its address and its backend's words, which
// belong in the log and never in an answer.
const std::string kDirectoryDown = "ejabberd at http://10.9.8.7:5280/api is unreachable: connection refused";

// Stands in for the XMPP server's directory: keeps its accounts and lockouts, records each call as
// "<step> <arguments>", calls `on_call` with the step's name before answering, and fails with
// Errc::unavailable at the step named in `fail_at` (and at ping when `ping_fails`). Thread-safe.
class FakeDirectory : public ca::xmpp::Directory {
 public:
  std::vector<std::string> calls;
  std::string fail_at;
  bool ping_fails = false;
  int pings = 0;
  std::function<void(const std::string& step)> on_call;
  std::set<std::string> users;   // accounts on the server, whoever created them
  std::set<std::string> locked;  // accounts locked out

  Result<void> ensure_group(const std::string& group) override { return step("ensure_group", group); }
  Result<bool> user_exists(const std::string& username) override {
    if (auto r = step("user_exists", username); !r) return r.error();
    std::lock_guard lock(mutex_);
    return users.contains(username);
  }
  Result<void> create_user(const std::string& username) override {
    if (auto r = step("create_user", username); !r) return r;
    std::lock_guard lock(mutex_);
    if (!users.insert(username).second) return fail(Errc::conflict, username + " exists");
    return {};
  }
  Result<void> add_member(const std::string& username, const std::string& group) override {
    return step("add_member", username + " " + group);
  }
  Result<void> disable_user(const std::string& username) override {
    if (auto r = step("disable_user", username); !r) return r;
    std::lock_guard lock(mutex_);
    locked.insert(username);
    return {};
  }
  Result<void> lift_lockout(const std::string& username) override {
    if (auto r = step("lift_lockout", username); !r) return r;
    std::lock_guard lock(mutex_);
    locked.erase(username);
    return {};
  }
  Result<void> delete_user(const std::string& username) override { return step("delete_user", username); }
  Result<void> ping() override {
    ++pings;
    if (ping_fails) return fail(Errc::unavailable, kDirectoryDown);
    return {};
  }

 private:
  Result<void> step(const std::string& name, const std::string& arguments) {
    {
      std::lock_guard lock(mutex_);
      calls.push_back(name + " " + arguments);
    }
    if (on_call) on_call(name);
    if (name == fail_at) return fail(Errc::unavailable, name + " failed: " + kDirectoryDown);
    return {};
  }

  std::mutex mutex_;
};

ca::store::Store open_store(const std::filesystem::path& file) { return ok(ca::store::Store::open(file)); }

void add_groups(ca::store::Store& store) {
  REQUIRE(store.add_group({"lab", "overlay1", kLabLifetime}));
  REQUIRE(store.add_group({"prod", "overlay2", std::chrono::days(7)}));
}

struct TokenSpec {
  std::string group = "lab";
  std::optional<std::string> username = std::nullopt;
  int uses = 1;
  TimePoint created_at = kNow;
  std::chrono::seconds ttl = 24h;
  bool adopt_existing = false;
};

// A CA with real signing and a real SQLite store (groups "lab" and "prod"), and a fake directory.
struct Ca {
  ca::store::Store store;
  FakeDirectory directory;
  Authority authority{store, pki().signer(), directory, kXmpp};
  std::vector<std::string> token_ids;

  explicit Ca(const std::filesystem::path& db = ":memory:") : store(open_store(db)) { add_groups(store); }

  // Stores a new token and returns its text.
  std::string token(const TokenSpec& spec = {}) {
    auto made = ca::enrollment::make_token(spec.group, spec.username, spec.ttl, spec.uses, spec.created_at);
    made.record.adopt_existing = spec.adopt_existing;
    REQUIRE(store.add_token(made.record));
    token_ids.push_back(made.record.id);
    return made.text;
  }

  int uses_left(const std::string& token_id) {
    auto record = ok(store.find_token(token_id));
    REQUIRE(record);
    return record->uses_left;
  }

  std::optional<ca::store::NodeRecord> node(const std::string& username) { return ok(store.find_node(username)); }

  std::optional<std::string> current_serial(const std::string& username) {
    auto n = node(username);
    return n ? std::optional(n->current_serial) : std::nullopt;
  }

  std::optional<ca::store::CertificateRecord> certificate(const std::string& serial) {
    return ok(store.find_certificate(serial));
  }

  // The error of a request that must be refused, after checking that no token use was spent and
  // that the node `username` kept its current certificate (or still has none).
  Error refused(const protocol::EnrollRequest& request, const std::string& username = "node1") {
    std::map<std::string, int> uses_before;
    for (const auto& id : token_ids) uses_before[id] = uses_left(id);
    const auto serial_before = current_serial(username);

    auto result = authority.enroll(request, kNow);
    REQUIRE_FALSE(result);

    for (const auto& [id, uses] : uses_before) CHECK(uses_left(id) == uses);
    CHECK(current_serial(username) == serial_before);
    return result.error();
  }
};

std::string token_id(const std::string& token_text) { return ok(ca::enrollment::parse_token(token_text)).id; }

crypto::Key ec_key() { return ok(crypto::Key::generate(crypto::KeyType::ec_p256)); }

std::string csr_for(const crypto::Key& key, const std::string& common_name) {
  return ok(crypto::Csr::create(key, common_name)).to_pem();
}

// A CSR with a CN that is present but empty, which Csr::create rightly cannot build.
std::string csr_with_empty_cn(const crypto::Key& key) {
  crypto::X509Req req(X509_REQ_new());
  REQUIRE(req);
  REQUIRE(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, V_ASN1_UTF8STRING,
                                     reinterpret_cast<const unsigned char*>(""), 0, -1, 0) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0);
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  REQUIRE(len > 0);
  const std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return ok(crypto::Csr::from_der(bytes)).to_pem();
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
  ca::store::Store second_store = open_store(db);
  FakeDirectory second_directory;
  Authority second(second_store, pki().signer(), second_directory, kXmpp);
  Meeting meeting;
  for (FakeDirectory* d : {&ca.directory, &second_directory})
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

// A directory for database files, removed with everything in it (-wal, -shm) at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("evpn-authority-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

ca::api::Request request(http::verb method, const std::string& target, std::string body = {}) {
  ca::api::Request r{method, target, 11};
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

// What the routes answer to `request` from a loopback client.
ca::api::Response answer(Ca& ca, const ca::api::Request& request) {
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  return ca::api::Routes(ca.authority).handle(request, context);
}

protocol::ErrorBody error_body(const ca::api::Response& response) {
  CHECK(response[http::field::content_type] == "application/json");
  return ok(protocol::parse_error_body(response.body()));
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
  CHECK(record->status == "active");
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
  CHECK(old_record->status == "superseded");
  CHECK(new_record->status == "active");
  CHECK(ca.uses_left(token_id(pinned)) == 0);
}

TEST_CASE("two requests racing for a token's last use get one certificate and one refusal") {
  TempDir dir;
  const auto db = dir.path / "state.db";
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

TEST_CASE("GET /v1/roots answers 200 with the root certificate in PEM") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::get, "/v1/roots"));
  CHECK(response.result() == http::status::ok);
  CHECK(response.body() == pki().root_pem());
}

TEST_CASE("POST /v1/enroll answers 201 with an enrollment result the agent can parse") {
  Ca ca;
  const crypto::Key key = ec_key();
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(key, "node1")});

  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));

  CHECK(response.result() == http::status::created);
  CHECK(response[http::field::content_type] == "application/json");
  const auto result = ok(protocol::parse_enrollment_result(response.body()));
  CHECK(ok(crypto::Certificate::from_pem(result.certificate)).matches(key));
  CHECK(result.node.jid == "node1@example.test");
  CHECK(ca.current_serial("node1") == result.serial);
}

TEST_CASE("POST /v1/enroll answers 400 invalid_request to a body that is not JSON") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", "{\"token\": "));
  CHECK(response.result() == http::status::bad_request);
  const auto body = error_body(response);
  CHECK(body.error == "invalid_request");
  CHECK_FALSE(body.message.empty());
}

TEST_CASE("POST /v1/enroll answers 401 unauthorized to an unknown token") {
  Ca ca;
  const std::string unknown = "evpn1_0123456789abcdef_" + std::string(64, 'a');
  const auto body = protocol::to_json(protocol::EnrollRequest{unknown, csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));
  CHECK(response.result() == http::status::unauthorized);
  CHECK(error_body(response).error == "unauthorized");
}

TEST_CASE("POST /v1/enroll answers 503 with Retry-After while the directory is down") {
  Ca ca;
  ca.directory.fail_at = "ensure_group";
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));
  CHECK(response.result() == http::status::service_unavailable);
  CHECK_FALSE(response[http::field::retry_after].empty());
  CHECK(error_body(response).error == "unavailable");
  CHECK_FALSE(ca.node("node1"));
}

TEST_CASE("an unknown path answers 404 not_found") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::get, "/v1/nothing"));
  CHECK(response.result() == http::status::not_found);
  CHECK(error_body(response).error == "not_found");
}

TEST_CASE("GET /healthz answers the last probe: 200 while the directory answered, 503 once it did not") {
  Ca ca;
  ca::api::Routes routes(ca.authority);
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  auto healthz = [&] { return routes.handle(request(http::verb::get, "/healthz"), context); };

  // Not probed yet.
  CHECK(healthz().result() == http::status::service_unavailable);

  routes.probe_health();
  CHECK(ca.directory.pings == 1);
  ca.directory.ping_fails = true;
  for (int i = 0; i < 3; ++i) CHECK(healthz().result() == http::status::ok);
  CHECK(ca.directory.pings == 1);

  routes.probe_health();
  const auto response = healthz();
  CHECK(response.result() == http::status::service_unavailable);
  CHECK_FALSE(response[http::field::retry_after].empty());
  const auto body = error_body(response);
  CHECK(body.error == "unavailable");
  CHECK(body.message == "the XMPP directory does not answer");
}

namespace {

// A node enrolled through the authority: its key and certificate.
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

struct Enrolled {
  crypto::Key key;
  crypto::Certificate cert;
  std::string serial;
};

Enrolled enroll_node(Ca& ca, const std::string& username, TimePoint at = kNow) {
  crypto::Key key = ec_key();
  const auto result = ok(ca.authority.enroll({ca.token(), csr_for(key, username)}, at)).result;
  auto cert = ok(crypto::Certificate::from_pem(result.certificate));
  return {std::move(key), std::move(cert), result.serial};
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
  if (serial_before) CHECK(ca.certificate(*serial_before)->status == "active");
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
  CHECK(ca.certificate(first.serial)->status == "superseded");
  CHECK(ca.certificate(result.serial)->status == "active");
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
  CHECK(ca.certificate(node.serial)->status == "active");
  // The same certificate renews once the directory answers again.
  ca.directory.fail_at.clear();
  CHECK(ca.authority.renew({csr_for(ec_key(), "node1")}, &node.cert, kNow));
}

TEST_CASE("two renewals racing with the same certificate get one new certificate and one refusal") {
  TempDir dir;
  const auto db = dir.path / "state.db";
  Ca first(db);
  const Enrolled node = enroll_node(first, "node1");
  const std::string csrs[] = {csr_for(ec_key(), "node1"), csr_for(ec_key(), "node1")};

  const auto [r1, r2] = race(first, db, [&](Authority& a, int i) { return a.renew({csrs[i]}, &node.cert, kNow); });
  REQUIRE(r1.has_value() != r2.has_value());
  const Result<Issued>& won = r1.has_value() ? r1 : r2;
  const Result<Issued>& lost = r1.has_value() ? r2 : r1;
  CHECK(lost.error().code == Errc::unauthorized);
  CHECK(first.current_serial("node1") == won->result.serial);
  CHECK(first.certificate(node.serial)->status == "superseded");
}

TEST_CASE("POST /v1/renew answers 201 to the current certificate over TLS and 401 without one") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const crypto::Key new_key = ec_key();
  const auto body = protocol::to_json(protocol::RenewRequest{csr_for(new_key, "node1")});
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";

  const auto without = ca::api::Routes(ca.authority).handle(request(http::verb::post, "/v1/renew", body), context);
  CHECK(without.result() == http::status::unauthorized);
  CHECK(error_body(without).error == "unauthorized");
  CHECK(ca.current_serial("node1") == node.serial);

  context.client_certificate_der = node.cert.to_der();
  const auto with = ca::api::Routes(ca.authority).handle(request(http::verb::post, "/v1/renew", body), context);
  CHECK(with.result() == http::status::created);
  const auto result = ok(protocol::parse_enrollment_result(with.body()));
  CHECK(ok(crypto::Certificate::from_pem(result.certificate)).matches(new_key));
  CHECK(ca.current_serial("node1") == result.serial);
}

namespace {

// How many of `n` requests `make(i)` sent to `routes` at once got each status.
std::map<unsigned, int> statuses_of_concurrent(ca::api::Routes& routes, int n,
                                               const std::function<ca::api::Request(int)>& make) {
  std::mutex mutex;
  std::map<unsigned, int> statuses;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ca::api::RequestContext context;
      context.client_address = "127.0.0.1";
      const unsigned status = routes.handle(make(i), context).result_int();
      std::lock_guard lock(mutex);
      ++statuses[status];
    });
  for (auto& t : threads) t.join();
  return statuses;
}

// The answer of a renewal of `current` with a new key through `routes`, and that key.
std::pair<ca::api::Response, crypto::Key> renew_through(ca::api::Routes& routes, const crypto::Certificate& current) {
  crypto::Key key = ec_key();
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  context.client_certificate_der = current.to_der();
  const auto body = protocol::to_json(protocol::RenewRequest{csr_for(key, current.common_name())});
  return {routes.handle(request(http::verb::post, "/v1/renew", body), context), std::move(key)};
}

// The revoked serials a DER CRL lists, in lower-case hex as the store keeps them.
std::vector<std::string> crl_serials(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(crl);
  std::vector<std::string> serials;
  const auto* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    crypto::BigNum bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr));
    char* hex = BN_bn2hex(bn.get());
    std::string text(hex);
    OPENSSL_free(hex);
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    serials.push_back(text.substr(std::min(text.find_first_not_of('0'), text.size())));
  }
  return serials;
}

}  // namespace

TEST_CASE("a directory failure answers 503 naming the failure, never the directory's address or words") {
  Ca ca;
  ca.directory.fail_at = "user_exists";
  test::CapturedLog log;

  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));

  CHECK(response.result() == http::status::service_unavailable);
  const auto error = error_body(response);
  CHECK_THAT(error.message, Catch::Contains("directory") && Catch::Contains("retry later"));
  for (const char* secret : {"10.9.8.7", "5280", "http", "connection refused", "ejabberd"})
    CHECK_THAT(error.message, !Catch::Contains(secret));
  CHECK_THAT(log.text.str(), Catch::Contains(kDirectoryDown));
}

TEST_CASE("an Openfire directory that refuses the CA is answered 503 without its address or its answer") {
  Ca ca;
  test::OpenfireStandin::Options disabled;
  disabled.disabled = true;
  test::OpenfireStandin openfire(disabled);
  test::TempDir dir{"evpn-authority-openfire"};
  ca::DirectoryConfig config;
  config.type = "openfire";
  config.url = openfire.url();
  config.secret_file = (dir.path() / "secret").string();
  std::ofstream(config.secret_file) << disabled.secret << "\n";
  auto directory = ok(ca::xmpp::make_directory(config, kXmpp.domain));
  Authority authority(ca.store, pki().signer(), *directory, kXmpp);
  test::CapturedLog log;

  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = ca::api::Routes(authority).handle(request(http::verb::post, "/v1/enroll", body), context);

  CHECK(response.result() == http::status::service_unavailable);
  const auto error = error_body(response);
  for (const std::string secret : {std::string("127.0.0.1"), std::to_string(openfire.port()), std::string("HTTP 403"),
                                   std::string("plugin"), std::string("restapi")})
    CHECK_THAT(error.message, !Catch::Contains(secret));
  CHECK_THAT(log.text.str(), Catch::Contains(openfire.url()) && Catch::Contains("HTTP 403"));
}

TEST_CASE("GET /v1/crl answers the same CRL until a revocation, also one by another process, changes it") {
  TempDir dir;
  const auto db = dir.path / "state.db";
  Ca ca(db);
  const Enrolled first = enroll_node(ca, "node1");
  const Enrolled second = enroll_node(ca, "node2");
  const auto crl = [&] {
    const auto response = answer(ca, request(http::verb::get, "/v1/crl"));
    REQUIRE(response.result() == http::status::ok);
    return response.body();
  };

  const std::string empty = crl();
  CHECK(crl() == empty);
  CHECK(crl_serials(empty).empty());

  ok(ca.authority.revoke({.username = "node1"}, now_seconds()));
  const std::string one = crl();
  CHECK(crl_serials(one) == std::vector<std::string>{first.serial});
  CHECK(crl() == one);

  // `evpn-ca revoke` writes the same store from another process.
  auto admin = open_store(db);
  ok(admin.revoke_node("node2", "keyCompromise", now_seconds()));
  const std::string two = crl();
  auto expected = std::vector<std::string>{first.serial, second.serial};
  std::sort(expected.begin(), expected.end());
  auto listed = crl_serials(two);
  std::sort(listed.begin(), listed.end());
  CHECK(listed == expected);
  CHECK(crl() == two);
}

TEST_CASE("failed attempts that run at the same time all count against the rate limit") {
  Ca ca;
  const std::string token = ca.token();
  ca::api::Routes routes(ca.authority, {.address_failures = 0, .token_failures = 3});
  // The requests that get past the limit wait at the directory until three have arrived there, so
  // none of them records its outcome before the others have asked the limiter.
  constexpr int n = 10;
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  ca.directory.on_call = [&](const std::string& step) {
    if (step != "add_member") return;
    std::unique_lock lock(mutex);
    ++arrived;
    changed.notify_all();
    changed.wait_for(lock, 10s, [&] { return arrived >= 3; });
  };

  const auto statuses = statuses_of_concurrent(routes, n, [&](int i) {
    const auto body = protocol::to_json(protocol::EnrollRequest{token, csr_for(ec_key(), "node" + std::to_string(i))});
    return request(http::verb::post, "/v1/enroll", body);
  });

  // Three were heard at once: one spent the token's only use, two found it spent. The success
  // freed its place for one more, which found the token spent too; then three failures filled
  // the window and the others were refused.
  CHECK(statuses.at(201) == 1);
  CHECK(statuses.count(401) == 1);
  CHECK(statuses.count(429) == 1);
  if (statuses.count(401) && statuses.count(429)) {
    CHECK(statuses.at(401) == 3);
    CHECK(statuses.at(429) == 6);
  }
}

TEST_CASE("a node that renews too often is answered 429 with Retry-After") {
  Ca ca;
  Enrolled node = enroll_node(ca, "node1");
  ca::api::Routes routes(ca.authority);
  crypto::Certificate current = std::move(node.cert);
  // The default allows ten renewals per username and hour.
  for (int i = 0; i < 10; ++i) {
    auto [response, key] = renew_through(routes, current);
    INFO(i << ": " << response.body());
    REQUIRE(response.result() == http::status::created);
    current = ok(crypto::Certificate::from_pem(ok(protocol::parse_enrollment_result(response.body())).certificate));
  }
  const auto serial = ca.current_serial("node1");
  auto [refused, key] = renew_through(routes, current);
  CHECK(refused.result() == http::status::too_many_requests);
  CHECK_FALSE(refused[http::field::retry_after].empty());
  CHECK_THAT(error_body(refused).message, Catch::Contains("node1"));
  CHECK(ca.current_serial("node1") == serial);
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
  CHECK(ca.certificate(node.serial)->status == "revoked");

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
  CHECK(ca.certificate(node.serial)->status == "revoked");
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
  CHECK(ca.node("node1")->status == "active");
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
  CHECK(ca.certificate(node.serial)->status == "active");
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
  CHECK(ca.node("node1")->status == "active");
  // The operator's new token is what lifts the lockout, and the audit log says so.
  CHECK_FALSE(ca.directory.locked.contains("node1"));
  CHECK(audit_actions(ca, "node1") ==
        std::vector<std::string>{"account-create", "enroll", "revoke", "lockout", "token-create", "lockout-lift",
                                 "enroll"});
}

TEST_CASE("GET /v1/crl answers a DER CRL signed by the root that lists the revoked serials") {
  Ca ca;
  const Enrolled revoked = enroll_node(ca, "node1");
  const Enrolled kept = enroll_node(ca, "node2");
  ok(ca.authority.revoke({.username = "node1", .reason = "keyCompromise"}, kNow));

  const auto response = answer(ca, request(http::verb::get, "/v1/crl"));
  CHECK(response.result() == http::status::ok);
  CHECK(response[http::field::content_type] == "application/pkix-crl");
  const auto* p = reinterpret_cast<const unsigned char*>(response.body().data());
  crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(response.body().size())));
  REQUIRE(crl);
  CHECK(X509_CRL_verify(crl.get(), pki().signer().root().public_key()) == 1);
  X509_REVOKED* entry = nullptr;
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get_serialNumber(revoked.cert.get())) == 1);
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get_serialNumber(kept.cert.get())) == 0);
}

TEST_CASE("a CRL signed in the second of a revocation gets a higher number than one signed before it") {
  Ca ca;
  enroll_node(ca, "node1");
  const auto number = [](const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    REQUIRE(crl);
    auto* n = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
    REQUIRE(n);
    std::int64_t value = 0;
    ASN1_INTEGER_get_int64(&value, n);
    ASN1_INTEGER_free(n);
    return value;
  };
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
  ca::store::NodeRecord node{"node1", "lab", "01", kNow + std::chrono::days(30), "active"};
  node.not_before = kNow;
  CHECK(ca::authority::node_state(node, kNow) == "active");
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(19)) == "active");
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(20)) == "expiring");
  CHECK(ca::authority::node_state(node, kNow + std::chrono::days(30)) == "expired");
  node.status = "revoked";
  CHECK(ca::authority::node_state(node, kNow) == "revoked");
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
                        [&] { return ca.certificate(node.serial)->status == "revoked"; });
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
                        [&] { return ca.certificate(node.serial)->status == "revoked"; });
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

TEST_CASE("GET /v1/status answers the status of the TLS client certificate, and 401 without one") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  ca::api::Routes routes(ca.authority);

  const auto without = routes.handle(request(http::verb::get, "/v1/status"), context);
  CHECK(without.result() == http::status::unauthorized);
  CHECK(error_body(without).error == "unauthorized");

  context.client_certificate_der = node.cert.to_der();
  const auto current = routes.handle(request(http::verb::get, "/v1/status"), context);
  REQUIRE(current.result() == http::status::ok);
  const auto body = ok(protocol::parse_certificate_status(current.body()));
  CHECK(body.serial == node.serial);
  CHECK(body.status == protocol::CertificateState::current);
  CHECK(current.body() == R"({"serial":")" + node.serial + R"(","status":"current"})");
}
