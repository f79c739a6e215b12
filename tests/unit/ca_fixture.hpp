#pragma once
// What the authority's and the routes' unit tests share: a CA with real signing and a real store
// in front of a directory stand-in, and helpers to enroll nodes through it.

#include "ca-service/authority/authority.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/store/store.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/test_store.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace evpn::test::ca_fixture {

using namespace std::chrono_literals;
using evpn::ca::authority::Authority;

inline const TimePoint kNow = now_seconds();
inline const ca::XmppConfig kXmpp{"example.test", "xmpp.example.test", 5222};
inline constexpr std::chrono::seconds kLabLifetime = std::chrono::days(30);

// One root for the whole run: every test's CA signs with it.
inline const test::TestPki& pki() {
  static const test::TestPki instance;
  return instance;
}

// What the directory stand-in says when it fails: its address and its backend's words, which
// belong in the log and never in an answer.
inline const std::string kDirectoryDown = "ejabberd at http://10.9.8.7:5280/api is unreachable: connection refused";

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
  bool manages = true;           // what manages_accounts says: false stands for `none`

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
  bool manages_accounts() const override { return manages; }
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

// On SQLite, or on PostgreSQL in the *_postgresql runs (tests/support/test_store.hpp).
inline ca::store::Store open_store(const std::filesystem::path& file) {
  return ok(ca::store::Store::open(test::store_location(file)));
}

inline void add_groups(ca::store::Store& store) {
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

// A CA with real signing and a real store (groups "lab" and "prod"), and a fake directory.
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

// Another CA on the store `db` of a first one, with connections and a directory stand-in of its
// own: another process on the same SQLite file, or another `evpn-ca serve` replica on the same
// PostgreSQL database.
struct Replica {
  ca::store::Store store;
  FakeDirectory directory;
  Authority authority;
  explicit Replica(const std::filesystem::path& db)
      : store(open_store(db)), authority(store, pki().signer(), directory, kXmpp) {}
};

inline std::string token_id(const std::string& token_text) { return ok(ca::enrollment::parse_token(token_text)).id; }

inline crypto::Key ec_key() { return ok(crypto::Key::generate(crypto::KeyType::ec_p256)); }

inline std::string csr_for(const crypto::Key& key, const std::string& common_name) {
  return ok(crypto::Csr::create(key, common_name)).to_pem();
}

// A node enrolled through the authority: its key and certificate.
struct Enrolled {
  crypto::Key key;
  crypto::Certificate cert;
  std::string serial;
};

inline Enrolled enroll_node(Ca& ca, const std::string& username, TimePoint at = kNow) {
  crypto::Key key = ec_key();
  const auto result = ok(ca.authority.enroll({ca.token(), csr_for(key, username)}, at)).result;
  auto cert = ok(crypto::Certificate::from_pem(result.certificate));
  return {std::move(key), std::move(cert), result.serial};
}

}  // namespace evpn::test::ca_fixture
