// Two `evpn-ca serve` replicas on one PostgreSQL database, end to end: a PostgreSQL server of the
// test's own, a CA made with `evpn-ca init --store postgresql://...`, a second replica made as the
// README says (a copy of the CA directory with its own "listen"), a real ejabberd, and clients
// that speak the HTTP API. Exits 77 (skipped) when PostgreSQL is not installed.

#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/store/store.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/key.hpp"
#include "common/net/https_client.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/store_inspection.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using evpn::test::ok;

namespace {

namespace fs = std::filesystem;
namespace net = evpn::net;
using namespace std::chrono_literals;
using evpn::test::Deployment;
using evpn::test::PostgresServer;

const bool skip_without_postgres = [] {
  if (!PostgresServer::installed()) {
    std::cerr << "PostgreSQL's server programs are not installed (apt-get install postgresql): skipped\n";
    std::exit(77);
  }
  return false;
}();

// A replica as the README makes one: a copy of the CA directory, keys included, whose config.json
// has a "listen" (and, on one host, a "metrics_listen") of its own; `evpn-ca serve` on it.
class Replica {
 public:
  Replica(const fs::path& ca_dir, fs::path dir) : dir_(std::move(dir)), port_(evpn::test::free_port()) {
    fs::copy(ca_dir, dir_, fs::copy_options::recursive);
    auto config = nlohmann::json::parse(evpn::test::read_file(dir_ / "config.json"));
    config["listen"] = "127.0.0.1:" + std::to_string(port_);
    // On the same host as the first replica: a metrics port of its own too.
    config["metrics_listen"] = "127.0.0.1:" + std::to_string(evpn::test::free_port());
    std::ofstream(dir_ / "config.json", std::ios::trunc) << config.dump(2) << '\n';
    start();
  }

  void start() {
    process_.emplace(std::vector<std::string>{EVPN_CA_BIN, "serve", "--dir", dir_}, dir_ / "serve.log");
    if (!evpn::test::wait_for_port(port_, std::chrono::milliseconds(30000)))
      throw std::runtime_error("the replica did not start; its log:\n" + log());
  }
  // SIGKILL, as a crash or a power cut would end it.
  void kill() {
    if (process_) process_->stop(SIGKILL);
    process_.reset();
  }
  const fs::path& dir() const { return dir_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return evpn::test::read_file(dir_ / "serve.log"); }

 private:
  fs::path dir_;
  std::uint16_t port_;
  std::optional<evpn::test::BackgroundProcess> process_;
};

PostgresServer& started(PostgresServer& server) {
  server.start();
  return server;
}

// Turns the per-address limits off (before the replica copies the config): every client here is
// 127.0.0.1, so the race test's refusals would turn the storm's requests into 429s, and the storm's
// 64 connections (plus the retries) exceed the 32 one address may hold open. Tested elsewhere.
Deployment& without_address_limits(Deployment& d) {
  const auto file = d.ca_dir() / "config.json";
  auto config = nlohmann::json::parse(evpn::test::read_file(file));
  config["rate_limits"]["address_failures"] = 0;
  config["rate_limits"]["token_failures"] = 0;
  config["max_connections_per_address"] = config["max_connections"];
  std::ofstream(file, std::ios::trunc) << config.dump(2) << '\n';
  d.stop_ca();
  d.start_ca();
  return d;
}

// The PostgreSQL server, replica A (the Deployment's own `serve`) and replica B, for the whole run.
struct World {
  PostgresServer postgres;
  std::string store_url = started(postgres).create_database("ca");
  Deployment a{"evpn-replicas", "ejabberd", "",
               {"--store", store_url, "--store-password-file", postgres.password_file().string()}};
  Replica b{without_address_limits(a).ca_dir(), a.dir() / "ca-b"};
  std::string root_pem = evpn::test::read_file(a.ca_dir() / "ca.crt");

  World() { a.add_group("fleet", "101000F"); }

  evpn::ca::store::Store store() {
    return ok(evpn::ca::store::Store::open(evpn::ca::store::StoreLocation{store_url, postgres.password()}));
  }
};

World& world() {
  static World w;
  return w;
}

std::string token_id(const std::string& token) { return ok(evpn::ca::enrollment::parse_token(token)).id; }

std::string csr_for(const std::string& username) {
  const auto key = ok(evpn::crypto::Key::generate(evpn::crypto::KeyType::ec_p256));
  return ok(evpn::crypto::Csr::create(key, username)).to_pem();
}

// What a client heard from POST /v1/enroll; status 0 when no answer came (the replica died).
struct Answer {
  int status = 0;
  std::string body;
  std::optional<std::chrono::seconds> retry_after{};
  std::string serial{};
  std::string pem{};
};

Answer enroll(const std::string& ca_url, const std::string& token, const std::string& csr) {
  net::ClientTls tls;
  tls.ca_pem = world().root_pem;
  const net::HttpClient client(tls, 30s);
  const net::HttpRequest request{"POST", net::join(*net::parse_url(ca_url), "/v1/enroll"),
                                 {{"Content-Type", "application/json"}},
                                 evpn::protocol::to_json(evpn::protocol::EnrollRequest{token, csr})};
  const auto response = client.send(request);
  if (!response) return {};
  Answer answer{response->status, response->body, response->retry_after};
  if (response->status == 201)
    if (auto result = evpn::protocol::parse_enrollment_result(response->body)) {
      answer.serial = result->serial;
      answer.pem = result->certificate;
    }
  return answer;
}

}  // namespace

TEST_CASE("init --store makes a CA on PostgreSQL, and every admin command works from either replica's directory") {
  auto& w = world();
  using Catch::Matchers::Contains;
  CHECK_THAT(evpn::test::read_file(w.a.ca_dir() / "config.json"), Contains(w.store_url));
  CHECK_FALSE(fs::exists(w.a.ca_dir() / "state.db"));

  const std::string token = Deployment::evpn_ca_in(w.b.dir(), {"token", "create", "--group", "fleet"});
  const Answer enrolled = enroll(w.a.ca_url(), token, csr_for("admin1"));
  INFO(enrolled.body);
  REQUIRE(enrolled.status == 201);
  CHECK_THAT(Deployment::evpn_ca_in(w.b.dir(), {"nodes"}), Contains("admin1"));
  CHECK_THAT(Deployment::evpn_ca_in(w.b.dir(), {"token", "list"}), Contains(token_id(token)));
  CHECK_THAT(Deployment::evpn_ca_in(w.b.dir(), {"audit"}), Contains("enroll"));

  Deployment::evpn_ca_in(w.b.dir(), {"revoke", "--username", "admin1"});
  CHECK_THAT(w.a.evpn_ca({"nodes"}), Contains("revoked"));

  const std::string unused = Deployment::evpn_ca_in(w.b.dir(), {"token", "create", "--group", "fleet"});
  w.a.evpn_ca({"token", "revoke", token_id(unused)});
  CHECK(enroll(w.b.url(), unused, csr_for("admin2")).status == 401);

  // A second init on the same database would make a second CA key for the same state.
  const auto again = evpn::test::run({EVPN_CA_BIN, "init", "--dir", (w.a.dir() / "ca-again").string(), "--xmpp-domain",
                                      "evpn.test", "--directory", "none", "--store", w.store_url,
                                      "--store-password-file", w.postgres.password_file().string()});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Contains("already holds a CA's state"));
}

TEST_CASE("a token's last use is spent exactly once when two replicas race for it") {
  auto& w = world();
  for (int round = 0; round < 4; ++round) {
    const std::string token = w.a.token("fleet");
    const std::string name = "race" + std::to_string(round);
    auto at_a = std::async(std::launch::async, [&] { return enroll(w.a.ca_url(), token, csr_for(name + "a")); });
    auto at_b = std::async(std::launch::async, [&] { return enroll(w.b.url(), token, csr_for(name + "b")); });
    const Answer first = at_a.get(), second = at_b.get();
    INFO(first.body << "\n" << second.body);
    CHECK(std::multiset<int>{first.status, second.status} == std::multiset<int>{201, 401});
  }
}

TEST_CASE("an enrollment whose answer was lost is answered again by the other replica") {
  auto& w = world();
  const std::string token = w.a.token("fleet");
  const std::string csr = csr_for("replay1");
  const Answer first = enroll(w.a.ca_url(), token, csr);
  REQUIRE(first.status == 201);
  const Answer again = enroll(w.b.url(), token, csr);
  CHECK(again.status == 201);
  CHECK(again.serial == first.serial);
  CHECK(again.pem == first.pem);
}

TEST_CASE("a replica killed during 64 concurrent enrollments over both loses and duplicates nothing") {
  auto& w = world();
  constexpr int kClients = 64;
  const std::string token = w.a.token("fleet", {"--uses", std::to_string(kClients)});

  // Replica A is killed once a few of its answers are out, with others in flight; a client whose
  // request A never answered sends the same request to B, as an agent retrying would.
  std::mutex mutex;
  std::condition_variable answered;
  int answered_by_a = 0;
  std::vector<Answer> finals(kClients);
  std::vector<bool> retried(kClients, false);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      const std::string csr = csr_for("storm" + std::to_string(i));
      const bool to_a = i % 2 == 0;
      Answer answer = enroll(to_a ? w.a.ca_url() : w.b.url(), token, csr);
      if (to_a && answer.status != 0) {
        std::lock_guard lock(mutex);
        ++answered_by_a;
        answered.notify_all();
      }
      if (answer.status == 0) {
        retried[i] = true;
        answer = enroll(w.b.url(), token, csr);
      }
      finals[i] = std::move(answer);
    });
  {
    std::unique_lock lock(mutex);
    answered.wait(lock, [&] { return answered_by_a >= 4; });
  }
  w.a.kill_ca();
  for (auto& c : clients) c.join();
  w.a.start_ca();

  std::map<int, int> statuses;
  std::set<std::string> serials;
  int retries = 0;
  for (int i = 0; i < kClients; ++i) {
    ++statuses[finals[i].status];
    retries += retried[i] ? 1 : 0;
    INFO("client " << i << " (retried at B: " << retried[i] << "): " << finals[i].status << " " << finals[i].body);
    if (finals[i].status == 201) {
      CHECK(serials.insert(finals[i].serial).second);
    } else {
      // Only a request whose replica died between creating the XMPP account and recording it may
      // find the account unrecognised on its retry (a window a single CA has as well).
      CHECK(retried[i]);
      CHECK(finals[i].status == 409);
    }
  }
  std::cout << "replicas kill summary: clients " << kClients << ", answered by A before the kill " << answered_by_a
            << ", retried at B " << retries << ", statuses {";
  for (const auto& [status, count] : statuses) std::cout << status << ": " << count << " ";
  std::cout << "}\n";

  auto store = w.store();
  const auto per_token = ok(evpn::test::certificates_per_token(
      evpn::ca::store::StoreLocation{w.store_url, w.postgres.password()}));
  const auto record = ok(store.find_token(token_id(token)));
  REQUIRE(record);
  CHECK(per_token.at(token_id(token)) == static_cast<int>(serials.size()));
  CHECK(kClients - record->uses_left == static_cast<int>(serials.size()));
  for (const auto& answer : finals) {
    if (answer.status != 201) continue;
    const auto stored = ok(store.find_certificate(answer.serial));
    REQUIRE(stored);
    CHECK(stored->pem == answer.pem);
  }
}

TEST_CASE("while PostgreSQL restarts, replicas answer only 503 with Retry-After, then serve again on their own") {
  auto& w = world();
  const std::string token = w.a.token("fleet", {"--uses", "100"});
  const std::vector<std::string> urls{w.a.ca_url(), w.b.url()};
  int n = 0;
  auto next_csr = [&] { return csr_for("restart" + std::to_string(n++)); };
  for (const auto& url : urls) REQUIRE(enroll(url, token, next_csr()).status == 201);

  // Eight enrollments at once, spread over both replicas.
  auto eight_at_once = [&] {
    std::vector<std::future<Answer>> answers;
    for (int i = 0; i < 8; ++i)
      answers.push_back(
          std::async(std::launch::async, [&, url = urls[i % 2], csr = next_csr()] { return enroll(url, token, csr); }));
    std::vector<Answer> out;
    for (auto& f : answers) out.push_back(f.get());
    return out;
  };

  w.postgres.stop();
  for (const Answer& answer : eight_at_once()) {
    INFO(answer.body);
    CHECK(answer.status == 503);
    CHECK(answer.retry_after);
  }
  w.postgres.start();
  // Each replica connects again on its next request: no restart of evpn-ca.
  for (const Answer& answer : eight_at_once()) {
    INFO(answer.body);
    CHECK(answer.status == 201);
  }
  // Nothing inconsistent: the uses spent are the certificates stored, 2 before and 8 after.
  auto store = w.store();
  CHECK(ok(store.find_token(token_id(token)))->uses_left == 100 - 10);
  CHECK(ok(evpn::test::certificates_per_token(evpn::ca::store::StoreLocation{w.store_url, w.postgres.password()}))
            .at(token_id(token)) == 10);
}

TEST_CASE("store migrate moves a stopped SQLite CA onto PostgreSQL, and serve carries on from the copy") {
  using Catch::Matchers::Contains;
  auto& w = world();
  Deployment sqlite("evpn-migrate");
  sqlite.add_group("moved", "101000F");
  const auto first = sqlite.node("moved1");
  const auto enrolled = sqlite.enroll(first, sqlite.token("moved"));
  INFO(enrolled.out << enrolled.err);
  REQUIRE(enrolled.exit_code == 0);
  const std::string kept = sqlite.token("moved", {"--uses", "2"});
  sqlite.stop_ca();

  const std::string url = w.postgres.create_database("migrated");
  const auto migrate = evpn::test::run({EVPN_CA_BIN, "store", "migrate", "--dir", sqlite.ca_dir().string(), "--to", url,
                                        "--store-password-file", w.postgres.password_file().string()});
  INFO(migrate.out << migrate.err);
  REQUIRE(migrate.exit_code == 0);
  CHECK_THAT(migrate.out, Contains("certificates 1"));
  CHECK_THAT(migrate.err, Contains("config.json now names it"));
  CHECK_THAT(evpn::test::read_file(sqlite.ca_dir() / "config.json"), Contains(url));

  // serve now runs on the copy: what was enrolled is there, and the kept token enrolls the next node.
  sqlite.start_ca();
  const auto second = sqlite.node("moved2");
  const auto next = sqlite.enroll(second, kept);
  INFO(next.out << next.err);
  CHECK(next.exit_code == 0);
  const std::string nodes = sqlite.evpn_ca({"nodes"});
  CHECK_THAT(nodes, Contains("moved1"));
  CHECK_THAT(nodes, Contains("moved2"));
  CHECK(sqlite.listing({"token", "list"}).dump().find("\"uses_left\":1") != std::string::npos);

  // A second migrate finds the store moved already and changes nothing.
  const auto again = evpn::test::run({EVPN_CA_BIN, "store", "migrate", "--dir", sqlite.ca_dir().string(), "--to", url,
                                      "--store-password-file", w.postgres.password_file().string()});
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Contains("already names the store"));
}
