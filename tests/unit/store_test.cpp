#include "ca-service/store/store.hpp"

#include "ca-service/store/migrate.hpp"

#include "tests/support/catch_result.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_store.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>


using namespace evpn;
using evpn::test::execute_sql;
using evpn::test::ok;
using evpn::test::set_schema_version;
using namespace evpn::ca::store;

namespace {

const TimePoint kNow = from_unix(1'800'000'000);

// A fresh directory for database files, removed with everything in it (-wal, -shm) at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("evpn-store-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path db() const { return path / "state.db"; }
};

Store open_store(const std::filesystem::path& file = ":memory:") {
  auto store = Store::open(evpn::test::store_location(file));
  REQUIRE(store);
  return std::move(*store);
}

TokenRecord token(const std::string& id, int uses, TimePoint expires_at = kNow + std::chrono::hours(24)) {
  return TokenRecord{id, std::string(64, 'a'), "lab", std::nullopt, expires_at, uses, kNow};
}

CertificateRecord certificate(const std::string& serial, const std::string& username) {
  CertificateRecord c;
  c.serial = serial;
  c.username = username;
  c.group = "lab";
  c.not_before = kNow - std::chrono::minutes(5);
  c.not_after = kNow + std::chrono::days(30);
  c.pem = "-----BEGIN CERTIFICATE-----\n" + serial + "\n-----END CERTIFICATE-----\n";
  c.issued_at = kNow;
  return c;
}

// A store with group "lab" and the given tokens.
void seed(Store& store, const std::vector<TokenRecord>& tokens) {
  REQUIRE(store.add_group({"lab", "overlay1", std::chrono::days(30)}));
  for (const auto& t : tokens) REQUIRE(store.add_token(t));
}

int uses_left(Store& store, const std::string& id) {
  auto t = store.find_token(id);
  REQUIRE(t);
  REQUIRE(*t);
  return (*t)->uses_left;
}

// Checks that `cert` is its node's current, active certificate, in its group.
void check_current(Store& store, const CertificateRecord& cert) {
  auto node = store.find_node(cert.username);
  REQUIRE(node);
  REQUIRE(*node);
  CHECK((*node)->group == cert.group);
  CHECK((*node)->current_serial == cert.serial);
  CHECK((*node)->not_after == cert.not_after);
  CHECK((*node)->status == evpn::ca::store::CertificateStatus::active);
}

bool has_certificate(Store& store, const std::string& serial) {
  auto c = store.find_certificate(serial);
  REQUIRE(c);
  return c->has_value();
}

}  // namespace

TEST_CASE("store creates its schema and keeps data across reopening a file") {
  TempDir dir;
  {
    Store store = open_store(dir.db());
    TokenRecord t = token("0123456789abcdef", 2);
    t.username = "node1";
    seed(store, {t});
    REQUIRE(store.record_enrollment(t.id, certificate("01", "node1"), kNow));
    REQUIRE(store.ping());
  }
  Store store = open_store(dir.db());

  auto group = store.find_group("lab");
  REQUIRE(group);
  REQUIRE(*group);
  CHECK((*group)->overlay == "overlay1");
  CHECK((*group)->lifetime == std::chrono::days(30));

  auto t = store.find_token("0123456789abcdef");
  REQUIRE(t);
  REQUIRE(*t);
  CHECK((*t)->secret_hash == std::string(64, 'a'));
  CHECK((*t)->group == "lab");
  CHECK((*t)->username == std::optional<std::string>("node1"));
  CHECK((*t)->expires_at == kNow + std::chrono::hours(24));
  CHECK((*t)->created_at == kNow);
  CHECK((*t)->uses_left == 1);

  auto c = store.find_certificate("01");
  REQUIRE(c);
  REQUIRE(*c);
  const CertificateRecord expected = certificate("01", "node1");
  CHECK((*c)->username == "node1");
  CHECK((*c)->group == "lab");
  CHECK((*c)->not_before == expected.not_before);
  CHECK((*c)->not_after == expected.not_after);
  CHECK((*c)->pem == expected.pem);
  CHECK((*c)->status == evpn::ca::store::CertificateStatus::active);
  CHECK((*c)->issued_at == kNow);

  check_current(store, expected);
}

TEST_CASE("store refuses a database written by a newer schema version") {
  TempDir dir;
  { open_store(dir.db()); }
  set_schema_version(dir.db(), 4);
  auto store = Store::open(evpn::test::store_location(dir.db()));
  REQUIRE_FALSE(store);
  CHECK(store.error().detail.find("schema version 4") != std::string::npos);
  CHECK(store.error().detail.find("upgrade evpn-ca") != std::string::npos);
}

TEST_CASE("store migrates a version 1 database: each account it issued for is its own, no token adopts") {
  TempDir dir;
  {
    Store store = open_store(dir.db());
    seed(store, {token("0123456789abcdef", 2)});
    REQUIRE(store.record_enrollment("0123456789abcdef", certificate("01", "node1"), kNow));
  }
  // Back to version 1, as evpn-ca 0.1 left its stores.
  execute_sql(dir.db(),
              "DROP TABLE attempts; DROP TABLE counters; DROP TABLE accounts; DROP INDEX certificates_by_renewed_from; "
              "ALTER TABLE certificates DROP COLUMN renewed_from; ALTER TABLE tokens DROP COLUMN adopt_existing;");
  set_schema_version(dir.db(), 1);

  Store store = open_store(dir.db());
  CHECK(ok(store.owns_account("node1")));
  CHECK_FALSE(ok(store.owns_account("node2")));
  auto t = ok(store.find_token("0123456789abcdef"));
  REQUIRE(t);
  CHECK_FALSE(t->adopt_existing);
  check_current(store, certificate("01", "node1"));
}

TEST_CASE("store records the accounts it created once, with an audit entry") {
  Store store = open_store();
  CHECK_FALSE(ok(store.owns_account("node1")));
  REQUIRE(store.record_account("node1", kNow));
  REQUIRE(store.record_account("node1", kNow));
  CHECK(ok(store.owns_account("node1")));
  auto audit = ok(store.list_audit());
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].action == "account-create");
  CHECK(audit[0].username == "node1");
}

TEST_CASE("store refuses an enrollment when the node changed or was revoked since the request was checked") {
  Store store = open_store();
  seed(store, {token("0123456789abcdef", 5, kNow + std::chrono::days(60))});
  REQUIRE(store.record_enrollment("0123456789abcdef", certificate("01", "node1"), kNow));
  // Checked when node1 had no certificate; another request enrolled it since.
  auto raced = store.record_enrollment("0123456789abcdef", certificate("02", "node1"), kNow);
  REQUIRE_FALSE(raced);
  CHECK(raced.error().code == Errc::conflict);
  REQUIRE(store.revoke_node("node1", "unspecified", kNow));
  auto revoked = store.record_enrollment("0123456789abcdef", certificate("03", "node1"), kNow, {.expected_current = "01"});
  REQUIRE_FALSE(revoked);
  CHECK(revoked.error().code == Errc::forbidden);
  CHECK(uses_left(store, "0123456789abcdef") == 4);
  CHECK_FALSE(has_certificate(store, "02"));
  CHECK_FALSE(has_certificate(store, "03"));
  // Once the revoked certificate has expired the name may enroll again.
  REQUIRE(store.record_enrollment("0123456789abcdef", certificate("04", "node1"), kNow + std::chrono::days(31),
                                  {.expected_current = "01", .lifted_lockout = true}));
}

TEST_CASE("store finds the certificate a renewal replaced its old one with") {
  Store store = open_store();
  seed(store, {token("0123456789abcdef", 1)});
  REQUIRE(store.record_enrollment("0123456789abcdef", certificate("01", "node1"), kNow));
  CHECK_FALSE(ok(store.find_renewal("01")));
  REQUIRE(store.record_renewal("01", certificate("02", "node1"), kNow));
  auto renewal = ok(store.find_renewal("01"));
  REQUIRE(renewal);
  CHECK(renewal->serial == "02");
}

TEST_CASE("store reports a PostgreSQL server it cannot reach, and a URL that would keep a password in clear") {
  auto unreachable = Store::open(StoreLocation{"postgresql://evpn@127.0.0.1:1/ca?connect_timeout=2"});
  REQUIRE_FALSE(unreachable);
  CHECK(unreachable.error().code == Errc::unavailable);
  CHECK(unreachable.error().detail.find("cannot connect to the CA store postgresql://evpn@127.0.0.1:1/ca") !=
        std::string::npos);
  auto with_password = Store::open(StoreLocation{"postgresql://evpn:secret@127.0.0.1:1/ca"});
  REQUIRE_FALSE(with_password);
  CHECK(with_password.error().code == Errc::invalid_request);
  CHECK(with_password.error().detail.find("--store-password-file") != std::string::npos);
}

TEST_CASE("store reports a file it cannot open", "[sqlite]") {
  TempDir dir;
  auto store = Store::open(dir.path / "missing" / "state.db");
  REQUIRE_FALSE(store);
  CHECK(store.error().code == Errc::io);
  CHECK(store.error().detail.find("missing") != std::string::npos);
}

TEST_CASE("store refuses a second group with the same name") {
  Store store = open_store();
  REQUIRE(store.add_group({"lab", "overlay1", std::chrono::days(30)}));
  auto again = store.add_group({"lab", "overlay2", std::chrono::days(7)});
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::conflict);
  CHECK(again.error().detail == "group 'lab' already exists");
  CHECK((*store.find_group("lab"))->overlay == "overlay1");
}

TEST_CASE("store refuses a token for a group that does not exist") {
  Store store = open_store();
  auto r = store.add_token(token("0123456789abcdef", 1));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::not_found);
  CHECK(r.error().detail.find("group 'lab' does not exist") != std::string::npos);
}

TEST_CASE("store answers nothing for names it does not know") {
  Store store = open_store();
  CHECK(store.find_group("nope").value() == std::nullopt);
  CHECK(store.find_token("nope").value() == std::nullopt);
  CHECK_FALSE(store.find_node("nope").value().has_value());
  CHECK_FALSE(store.find_certificate("nope").value().has_value());
}

TEST_CASE("store spends exactly one use of a token per enrollment") {
  Store store = open_store();
  seed(store, {token("t1", 3)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  CHECK(uses_left(store, "t1") == 2);
  REQUIRE(store.record_enrollment("t1", certificate("02", "node2"), kNow));
  CHECK(uses_left(store, "t1") == 1);
}

TEST_CASE("store refuses to spend a token with no uses left") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));

  auto r = store.record_enrollment("t1", certificate("02", "node1"), kNow, {.expected_current = "01"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::unauthorized);
  CHECK(r.error().detail.find("unknown, expired or used up") != std::string::npos);
  CHECK_FALSE(has_certificate(store, "02"));
  CHECK((*store.find_node("node1"))->current_serial == "01");
  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::active);
  CHECK(uses_left(store, "t1") == 0);
}

TEST_CASE("store refuses an expired or unknown token") {
  Store store = open_store();
  seed(store, {token("t1", 5, kNow)});
  for (const char* id : {"t1", "unknown"}) {
    auto r = store.record_enrollment(id, certificate("01", "node1"), kNow);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::unauthorized);
  }
  CHECK_FALSE(has_certificate(store, "01"));
  CHECK_FALSE(store.find_node("node1").value().has_value());
  CHECK(uses_left(store, "t1") == 5);
  // One second earlier the same token is still valid.
  CHECK(store.record_enrollment("t1", certificate("01", "node1"), kNow - std::chrono::seconds(1)));
}

TEST_CASE("store rolls back the token use when the certificate serial is a duplicate") {
  Store store = open_store();
  seed(store, {token("t1", 1), token("t2", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));

  auto r = store.record_enrollment("t2", certificate("01", "node2"), kNow);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::conflict);
  CHECK(uses_left(store, "t2") == 1);
  CHECK_FALSE(store.find_node("node2").value().has_value());
  CHECK((*store.find_certificate("01"))->username == "node1");
}

TEST_CASE("store supersedes the previous certificate when a node enrolls again") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  CertificateRecord second = certificate("02", "node1");
  second.not_after = kNow + std::chrono::days(60);
  REQUIRE(store.record_enrollment("t1", second, kNow, {.expected_current = "01"}));

  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::superseded);
  CHECK((*store.find_certificate("02"))->status == evpn::ca::store::CertificateStatus::active);
  check_current(store, second);
}

// Runs `attempt(first, "a")` and `attempt(second, "b")` at once on two connections to one
// database; exactly one must succeed and the other be refused as unauthorized.
template <class Attempt>
void race(Store& first, Store& second, Attempt attempt) {
  std::atomic<int> wins{0}, refusals{0}, other{0};
  auto run = [&](Store& store, const char* side) {
    auto r = attempt(store, side);
    if (r)
      ++wins;
    else if (r.error().code == Errc::unauthorized)
      ++refusals;
    else
      ++other;
  };
  std::thread a(run, std::ref(first), "a");
  std::thread b(run, std::ref(second), "b");
  a.join();
  b.join();
  REQUIRE(wins == 1);
  REQUIRE(refusals == 1);
  REQUIRE(other == 0);
}

TEST_CASE("store lets exactly one of two processes spend a single-use token") {
  TempDir dir;
  Store first = open_store(dir.db());
  Store second = open_store(dir.db());
  REQUIRE(first.add_group({"lab", "overlay1", std::chrono::days(30)}));

  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = "round" + std::to_string(round);
    REQUIRE(first.add_token(token(id, 1)));
    race(first, second, [&](Store& store, const char* side) {
      return store.record_enrollment(id, certificate(id + side, "node" + id + side), kNow);
    });
    CHECK(has_certificate(first, id + "a") != has_certificate(second, id + "b"));
    CHECK(uses_left(second, id) == 0);
  }
}

TEST_CASE("store issues exactly N certificates for a token with N uses under 2N concurrent attempts") {
  TempDir dir;
  Store stores[] = {open_store(dir.db()), open_store(dir.db())};
  constexpr int kUses = 8;
  seed(stores[0], {token("shared", kUses)});

  std::atomic<int> wins{0}, refusals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2 * kUses; ++i) {
    threads.emplace_back([&, i] {
      auto r = stores[i % 2].record_enrollment(
          "shared", certificate(std::to_string(i), "node" + std::to_string(i)), kNow);
      if (r)
        ++wins;
      else if (r.error().code == Errc::unauthorized)
        ++refusals;
    });
  }
  for (auto& t : threads) t.join();

  CHECK(wins == kUses);
  CHECK(refusals == kUses);
  int certificates = 0;
  for (int i = 0; i < 2 * kUses; ++i) certificates += has_certificate(stores[1], std::to_string(i)) ? 1 : 0;
  CHECK(certificates == kUses);
  CHECK(uses_left(stores[1], "shared") == 0);
}

TEST_CASE("store commits concurrent enrollments together and undoes only those that fail") {
  // Enrollments that arrive together share one transaction (group commit); each must still succeed
  // or fail on its own, and a failed one must leave no trace, not even its spent token use.
  TempDir dir;
  Store store = open_store(dir.db());
  seed(store, {token("shared", 100)});
  constexpr int kUnique = 12, kDuplicates = 4;
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kUnique + kDuplicates; ++i) {
    threads.emplace_back([&, i] {
      const std::string serial = i < kUnique ? "s" + std::to_string(i) : "dup";
      auto r = store.record_enrollment("shared", certificate(serial, "node" + std::to_string(i)), kNow);
      if (r)
        ++wins;
      else if (r.error().code == Errc::conflict)
        ++conflicts;
    });
  }
  for (auto& t : threads) t.join();

  CHECK(wins == kUnique + 1);
  CHECK(conflicts == kDuplicates - 1);
  CHECK(uses_left(store, "shared") == 100 - (kUnique + 1));
  auto nodes = store.list_nodes();
  REQUIRE(nodes);
  CHECK(nodes->size() == kUnique + 1);
  auto audit = store.list_audit();
  REQUIRE(audit);
  CHECK(std::count_if(audit->begin(), audit->end(), [](const auto& e) { return e.action == "enroll"; }) ==
        kUnique + 1);
  // What one connection committed, a fresh one reads back from the file.
  Store reopened = open_store(dir.db());
  CHECK(uses_left(reopened, "shared") == 100 - (kUnique + 1));
}

TEST_CASE("store renewal supersedes the current certificate and makes the new one current") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  CertificateRecord renewed = certificate("02", "node1");
  renewed.not_after = kNow + std::chrono::days(50);

  REQUIRE(store.record_renewal("01", renewed, kNow + std::chrono::days(20)));

  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::superseded);
  CHECK((*store.find_certificate("02"))->status == evpn::ca::store::CertificateStatus::active);
  check_current(store, renewed);
  // A renewal spends no token.
  CHECK(uses_left(store, "t1") == 1);
}

TEST_CASE("store refuses a renewal from a certificate that is not the node's current one") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.record_enrollment("t1", certificate("02", "node2"), kNow));
  REQUIRE(store.record_renewal("01", certificate("03", "node1"), kNow));

  std::string old_serial, username;
  SECTION("superseded by an earlier renewal") { std::tie(old_serial, username) = std::tuple{"01", "node1"}; }
  SECTION("another node's current certificate") { std::tie(old_serial, username) = std::tuple{"02", "node1"}; }
  SECTION("an unknown serial") { std::tie(old_serial, username) = std::tuple{"99", "node1"}; }
  SECTION("a node that never enrolled") { std::tie(old_serial, username) = std::tuple{"02", "node3"}; }

  auto r = store.record_renewal(old_serial, certificate("04", username), kNow);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::unauthorized);
  CHECK(r.error().detail.find("certificate " + old_serial + " is not the current") != std::string::npos);
  CHECK_FALSE(has_certificate(store, "04"));
  CHECK((*store.find_node("node1"))->current_serial == "03");
  CHECK((*store.find_node("node2"))->current_serial == "02");
  CHECK((*store.find_certificate("02"))->status == evpn::ca::store::CertificateStatus::active);
  CHECK((*store.find_certificate("03"))->status == evpn::ca::store::CertificateStatus::active);
  CHECK_FALSE(store.find_node("node3").value().has_value());
}

TEST_CASE("store refuses a renewal from a certificate that has expired at the given time") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  const CertificateRecord first = certificate("01", "node1");
  REQUIRE(store.record_enrollment("t1", first, kNow));

  auto r = store.record_renewal("01", certificate("02", "node1"), first.not_after);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::unauthorized);
  CHECK_FALSE(has_certificate(store, "02"));
  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::active);
  // One second earlier it is still valid and renews.
  CHECK(store.record_renewal("01", certificate("02", "node1"), first.not_after - std::chrono::seconds(1)));
}

TEST_CASE("store rolls back a renewal whose new serial is a duplicate") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.record_enrollment("t1", certificate("02", "node2"), kNow));

  auto r = store.record_renewal("01", certificate("02", "node1"), kNow);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::conflict);
  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::active);
  CHECK((*store.find_node("node1"))->current_serial == "01");
  CHECK((*store.find_certificate("02"))->username == "node2");
}

TEST_CASE("store lets exactly one of two processes renew with the same certificate") {
  TempDir dir;
  Store first = open_store(dir.db());
  Store second = open_store(dir.db());
  seed(first, {token("t1", 50)});

  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    const std::string username = "node" + std::to_string(round);
    const std::string old_serial = "r" + std::to_string(round);
    REQUIRE(first.record_enrollment("t1", certificate(old_serial, username), kNow));
    race(first, second, [&](Store& store, const char* side) {
      return store.record_renewal(old_serial, certificate(old_serial + side, username), kNow);
    });
    const bool a_won = has_certificate(second, old_serial + "a");
    CHECK(a_won != has_certificate(second, old_serial + "b"));
    CHECK((*second.find_node(username))->current_serial == old_serial + (a_won ? "a" : "b"));
    CHECK((*second.find_certificate(old_serial))->status == evpn::ca::store::CertificateStatus::superseded);
  }
}

namespace {

std::vector<std::string> audit_actions(Store& store) {
  auto entries = store.list_audit();
  REQUIRE(entries);
  std::vector<std::string> actions;
  for (const auto& e : *entries) actions.push_back(e.action);
  return actions;
}

std::vector<PendingLockout> pending(Store& store) {
  auto lockouts = store.pending_lockouts();
  REQUIRE(lockouts);
  return *lockouts;
}

}  // namespace

TEST_CASE("store revokes a node's current certificate, queues its lockout and audits it in one step") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  const TimePoint at = kNow + std::chrono::hours(1);

  auto revoked = store.revoke_node("node1", "keyCompromise", at);
  REQUIRE(revoked);
  CHECK(revoked->serial == "01");
  CHECK(revoked->username == "node1");
  CHECK(revoked->revoked_at == at);
  CHECK(revoked->reason == "keyCompromise");
  CHECK(revoked->lockout_queued);
  CHECK((*store.find_certificate("01"))->status == evpn::ca::store::CertificateStatus::revoked);

  auto node = *store.find_node("node1");
  REQUIRE(node);
  CHECK(node->status == evpn::ca::store::CertificateStatus::revoked);
  CHECK(node->revoked_at == std::optional(at));
  CHECK(node->revocation_reason == "keyCompromise");
  CHECK(node->overlay == "overlay1");
  REQUIRE(node->pending_lockout);
  CHECK(node->pending_lockout->serial == "01");
  CHECK(node->pending_lockout->since == at);

  auto revocations = store.list_revocations();
  REQUIRE(revocations);
  REQUIRE(revocations->size() == 1);
  CHECK((*revocations)[0].serial == "01");
  CHECK((*revocations)[0].revoked_at == at);
  CHECK((*revocations)[0].reason == "keyCompromise");

  CHECK(audit_actions(store) == std::vector<std::string>{"group-add", "token-create", "enroll", "revoke"});
  const AuditRecord last = store.list_audit()->back();
  CHECK(last.at == at);
  CHECK(last.username == "node1");
  CHECK(last.serial == "01");
  CHECK_THAT(last.detail, Catch::Contains("keyCompromise"));
}

TEST_CASE("store refuses to revoke a certificate twice, an unknown serial or an unknown node, and logs nothing") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.revoke_certificate("01", "unspecified", kNow));
  const auto audited = audit_actions(store).size();

  auto twice = store.revoke_node("node1", "keyCompromise", kNow);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == Errc::conflict);
  CHECK_THAT(twice.error().detail, Catch::Contains("already revoked"));
  CHECK(store.revoke_certificate("ff", "unspecified", kNow).error().code == Errc::not_found);
  CHECK(store.revoke_node("node9", "unspecified", kNow).error().code == Errc::not_found);
  CHECK(audit_actions(store).size() == audited);
  CHECK(store.list_revocations()->front().reason == "unspecified");
}

TEST_CASE("store revokes a superseded certificate without queueing a lockout of its node") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.record_enrollment("t1", certificate("02", "node1"), kNow, {.expected_current = "01"}));

  auto revoked = store.revoke_certificate("01", "superseded", kNow);
  REQUIRE(revoked);
  CHECK_FALSE(revoked->lockout_queued);
  CHECK(pending(store).empty());
  CHECK((*store.find_node("node1"))->status == evpn::ca::store::CertificateStatus::active);
}

TEST_CASE("store keeps a failed lockout pending with its error until it completes once") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.revoke_node("node1", "unspecified", kNow));

  REQUIRE(store.record_lockout_failure("node1", "ejabberd is unreachable"));
  REQUIRE(store.record_lockout_failure("node1", "ejabberd is still unreachable"));
  auto queued = pending(store);
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].username == "node1");
  CHECK(queued[0].serial == "01");
  CHECK(queued[0].attempts == 2);
  CHECK(queued[0].last_error == "ejabberd is still unreachable");
  CHECK((*store.find_node("node1"))->pending_lockout->last_error == "ejabberd is still unreachable");

  REQUIRE(store.complete_lockout("node1", "01", kNow + std::chrono::minutes(1)));
  CHECK(pending(store).empty());
  CHECK_FALSE((*store.find_node("node1"))->pending_lockout);
  // A second process finishing the same lockout records nothing more.
  REQUIRE(store.complete_lockout("node1", "01", kNow + std::chrono::minutes(2)));
  CHECK(audit_actions(store) == std::vector<std::string>{"group-add", "token-create", "enroll", "revoke", "lockout"});
}

TEST_CASE("store drops a lockout still queued for a name that enrolls again once its revoked certificate expired") {
  Store store = open_store();
  seed(store, {token("t1", 2, kNow + std::chrono::days(60))});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.revoke_node("node1", "unspecified", kNow));
  REQUIRE(store.record_enrollment("t1", certificate("02", "node1"), kNow + std::chrono::days(31),
                                  {.expected_current = "01"}));
  CHECK(pending(store).empty());
  CHECK((*store.find_node("node1"))->status == evpn::ca::store::CertificateStatus::active);
}

TEST_CASE("store lists tokens and revokes one so that it can no longer enroll") {
  Store store = open_store();
  TokenRecord pinned = token("t2", 3, kNow + std::chrono::hours(1));
  pinned.username = "node1";
  seed(store, {token("t1", 1), pinned});

  auto tokens = store.list_tokens();
  REQUIRE(tokens);
  REQUIRE(tokens->size() == 2);
  CHECK((*tokens)[0].id == "t1");
  CHECK((*tokens)[1].username == std::optional<std::string>("node1"));
  CHECK((*tokens)[1].uses_left == 3);
  CHECK_FALSE((*tokens)[1].revoked_at);

  REQUIRE(store.revoke_token("t2", kNow));
  auto revoked = *store.find_token("t2");
  REQUIRE(revoked);
  CHECK(revoked->uses_left == 0);
  CHECK(revoked->revoked_at == std::optional(kNow));
  auto refused = store.record_enrollment("t2", certificate("01", "node1"), kNow);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::unauthorized);

  CHECK(store.revoke_token("t2", kNow).error().code == Errc::conflict);
  CHECK(store.revoke_token("nope", kNow).error().code == Errc::not_found);
  CHECK(audit_actions(store) ==
        std::vector<std::string>{"group-add", "token-create", "token-create", "token-revoke"});
  // The audit log names tokens by id only.
  for (const auto& entry : *store.list_audit()) {
    CHECK(entry.detail.find(pinned.secret_hash) == std::string::npos);
    CHECK(entry.token_id.find(pinned.secret_hash) == std::string::npos);
  }
}

TEST_CASE("store audits enrollments and renewals with their serials and writes nothing for a refused one") {
  Store store = open_store();
  seed(store, {token("t1", 1)});
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));
  REQUIRE(store.record_renewal("01", certificate("02", "node1"), kNow));
  REQUIRE_FALSE(store.record_enrollment("t1", certificate("03", "node2"), kNow));
  REQUIRE_FALSE(store.add_group({"lab", "overlay9", std::chrono::days(1)}));

  auto entries = store.list_audit();
  REQUIRE(entries);
  REQUIRE(entries->size() == 4);
  CHECK((*entries)[2].action == "enroll");
  CHECK((*entries)[2].serial == "01");
  CHECK((*entries)[2].token_id == "t1");
  CHECK((*entries)[3].action == "renew");
  CHECK((*entries)[3].serial == "02");
  CHECK_THAT((*entries)[3].detail, Catch::Contains("replaces 01"));
  CHECK((*entries)[0].detail == "group lab -> overlay overlay1, certificates valid 30d");
}

TEST_CASE("store lists every node with its group's overlay") {
  Store store = open_store();
  seed(store, {token("t1", 2)});
  REQUIRE(store.record_enrollment("t1", certificate("02", "node2"), kNow));
  REQUIRE(store.record_enrollment("t1", certificate("01", "node1"), kNow));

  auto nodes = store.list_nodes();
  REQUIRE(nodes);
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[0].username == "node1");
  CHECK((*nodes)[0].current_serial == "01");
  CHECK((*nodes)[1].username == "node2");
  CHECK((*nodes)[1].overlay == "overlay1");
  CHECK((*nodes)[1].not_before == kNow - std::chrono::minutes(5));
  CHECK_FALSE((*nodes)[1].revoked_at);
}

TEST_CASE("store runs an exclusive job in one process at a time, and a process that dies in it leaves it to others") {
  TempDir dir;
  Store store = open_store(dir.db());
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Another replica: inside the job, it says so and never finishes.
    ::close(ready[0]);
    auto other = Store::open(evpn::test::store_location(dir.db()));
    if (other) (void)other->run_exclusive([&] {
      if (::write(ready[1], "x", 1) == 1) ::pause();
    });
    ::_exit(1);
  }
  ::close(ready[1]);
  char inside = 0;
  REQUIRE(::read(ready[0], &inside, 1) == 1);
  ::close(ready[0]);

  bool ran = false;
  CHECK_FALSE(ok(store.run_exclusive([&] { ran = true; })));
  CHECK_FALSE(ran);

  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  // The server notices the dead replica's closed connection on its own schedule; the kernel drops a
  // dead process's flock at once.
  CHECK(evpn::test::eventually([&] { return ok(store.run_exclusive([&] { ran = true; })); }, std::chrono::seconds(30)));
  CHECK(ran);
}

TEST_CASE("store copies an SQLite store into an empty PostgreSQL database, verifies it, and the copy carries on") {
  if (!evpn::test::PostgresServer::installed()) {
    WARN("PostgreSQL is not installed: the copy into it is not tested");
    return;
  }
  TempDir dir;
  long long audited = 0;
  {
    Store sqlite = ok(Store::open(dir.db()));
    seed(sqlite, {token("t1", 3)});
    REQUIRE(sqlite.record_enrollment("t1", certificate("01", "node1"), kNow));
    REQUIRE(sqlite.record_enrollment("t1", certificate("02", "node2"), kNow));
    REQUIRE(sqlite.revoke_node("node2", "keyCompromise", kNow));
    REQUIRE(sqlite.record_renewal("01", certificate("03", "node1"), kNow));
    REQUIRE(sqlite.take_crl_number(to_unix(kNow)));
    audited = static_cast<long long>(ok(sqlite.list_audit()).size());
  }
  auto& server = evpn::test::test_postgres();
  const StoreLocation target{server.create_database("migrated"), server.password()};

  const StoreSummary summary = ok(copy_to_postgres(dir.db(), target));
  CHECK(summary.rows.at("certificates") == 3);
  CHECK(summary.rows.at("nodes") == 2);
  CHECK(summary.rows.at("audit") == audited);
  CHECK(summary.certificates_sha256.size() == 64);

  Store copy = ok(Store::open(target));
  CHECK(uses_left(copy, "t1") == 1);
  check_current(copy, certificate("03", "node1"));
  CHECK(ok(copy.list_revocations()).size() == 1);
  CHECK(ok(copy.find_renewal("01"))->serial == "03");
  // The audit log's ids and the CRL numbers go on after the copied ones.
  REQUIRE(copy.add_group({"more", "overlay2", std::chrono::days(7)}));
  const auto audit = ok(copy.list_audit());
  CHECK(static_cast<long long>(audit.size()) == audited + 1);
  CHECK(audit.back().action == "group-add");
  CHECK(ok(copy.take_crl_number(0)).number == to_unix(kNow) + 1);

  auto again = copy_to_postgres(dir.db(), target);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::conflict);
}
