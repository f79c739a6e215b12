// evpn-bench: the measurements of the README's Performance section, in one run on one machine (see bench/run.sh).
// Every server runs on 127.0.0.1 in a temporary directory and is stopped by pid; every loop is
// bounded in count and in time. Prints one table and writes the same figures as JSON.
//
// Usage: evpn-bench OUTPUT.json [STORM_AGENTS (1000)] [STORM_PARALLEL (32)]
// EVPN_BENCH_ONLY=ca,cfssl,... measures only the parts named (see main), e.g. ca alone for profiling.
// EVPN_BENCH_STEP_CA names the step-ca binary (bench/run.sh installs it), EVPN_BENCH_STEP_CA_VERSION
// its version; EVPN_BENCH_STEP_CA_SKIP says why there is none.
// EVPN_BENCH_ONLY=ca,postgres gives rows 7 (SQLite from row 1 against PostgreSQL, one and two replicas).

#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/key.hpp"
#include "common/net/https_client.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Steady = std::chrono::steady_clock;
using namespace evpn;

namespace {

constexpr int kRepetitions = 3;

// The client counts of rows 1 and 2: 1, 8 and 64, or only EVPN_BENCH_CLIENTS (for profiling one).
const std::vector<int>& levels() {
  static const std::vector<int> chosen = [] {
    const char* only = std::getenv("EVPN_BENCH_CLIENTS");
    return only && *only ? std::vector<int>{std::stoi(only)} : std::vector<int>{1, 8, 64};
  }();
  return chosen;
}
constexpr auto kRunLimit = std::chrono::seconds(60);  // per measured run

double seconds_since(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string must_run(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(120)) {
  const test::RunResult r = test::run(argv, timeout);
  if (r.exit_code != 0) throw std::runtime_error(argv[0] + " " + argv[1] + " failed: " + r.err + r.out);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i >= 14) ticks += std::stod(f);  // fields 14 and 15: utime, stime
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// P-256 keys and CSRs made before any timing starts; CNs are unique (bench-<prefix>-<i>).
std::vector<std::string> make_csrs(const std::string& prefix, int count) {
  std::vector<std::string> csrs;
  for (int i = 0; i < count; ++i) {
    auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
    if (!key) throw std::runtime_error("key generation failed: " + key.error().detail);
    auto csr = crypto::Csr::create(*key, prefix + "-" + std::to_string(i));
    if (!csr) throw std::runtime_error("CSR creation failed: " + csr.error().detail);
    csrs.push_back(csr->to_pem());
  }
  return csrs;
}

// One client's keep-alive TLS connection (the project's HttpClient opens one per request).
// The server certificate is not verified: both servers compared are on loopback and treated alike.
class KeepAliveClient {
 public:
  explicit KeepAliveClient(std::uint16_t port) : port_(port) {}

  // POSTs `body` to `path`; returns the status and body, or nullopt when the exchange failed.
  std::optional<std::pair<int, std::string>> post(const std::string& path, const std::string& body) {
    try {
      if (!stream_) connect();
      http::request<http::string_body> req{http::verb::post, path, 11};
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      http::write(*stream_, req);
      http::response<http::string_body> res;
      http::read(*stream_, buffer_, res);
      if (!res.keep_alive()) stream_.reset();
      return std::make_pair(static_cast<int>(res.result_int()), std::move(res.body()));
    } catch (const std::exception&) {
      stream_.reset();
      return std::nullopt;
    }
  }

 private:
  void connect() {
    stream_.emplace(io_, tls_);
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
    stream_->next_layer().connect(ep);
    stream_->handshake(asio::ssl::stream_base::client);
    buffer_.clear();
  }

  std::uint16_t port_;
  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> stream_;
  beast::flat_buffer buffer_;
};

// CPU seconds this process (the load-generating clients) has used so far.
double own_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// CPU seconds (user + system) a process and its children (a PostgreSQL server's backends) have
// used so far.
double tree_cpu_seconds(pid_t pid) {
  double total = cpu_seconds(pid);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    if (stat.empty()) continue;
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state, parent;
    if (fields >> state >> parent && parent == std::to_string(pid)) total += cpu_seconds(std::stoi(name));
  }
  return total;
}

// A process whose CPU a run samples: its name in the results, and how to read its CPU seconds.
struct Sampled {
  std::string name;
  std::function<double()> cpu_seconds;
};

struct RunStats {
  double per_second = 0, p50_ms = 0, p99_ms = 0, cores = 0, client_cores = 0;
  int ok = 0, failed = 0;
  std::map<std::string, double> cores_each{};  // of the sampled processes, by name
};

// `clients` threads, each with its own keep-alive connection, send bodies[0..count) between
// them, client c to ports[c % ports.size()] (the replicas of one CA); `accepted` decides whether
// an answer is a success. Each of `sampled` is read for CPU; cores is their sum.
RunStats load_spread(const std::vector<std::uint16_t>& ports, const std::string& path,
                     const std::vector<std::string>& bodies, int clients,
                     const std::function<bool(int, const std::string&)>& accepted, const std::vector<Sampled>& sampled) {
  std::atomic<std::size_t> next{0};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mutex;
  std::vector<double> latencies;
  std::vector<double> cpu_before;
  for (const auto& s : sampled) cpu_before.push_back(s.cpu_seconds());
  const double client_cpu_before = own_cpu_seconds();
  const auto start = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      KeepAliveClient client(ports[static_cast<std::size_t>(c) % ports.size()]);
      std::vector<double> mine;
      for (std::size_t i; (i = next++) < bodies.size() && Steady::now() - start < kRunLimit;) {
        const auto t0 = Steady::now();
        const auto answer = client.post(path, bodies[i]);
        mine.push_back(seconds_since(t0) * 1000);
        (answer && accepted(answer->first, answer->second) ? ok : failed)++;
      }
      std::lock_guard lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double wall = seconds_since(start);
  RunStats s;
  s.ok = ok;
  s.failed = failed;
  s.per_second = ok / wall;
  s.p50_ms = percentile(latencies, 0.50);
  s.p99_ms = percentile(latencies, 0.99);
  for (std::size_t i = 0; i < sampled.size(); ++i) {
    const double cores = (sampled[i].cpu_seconds() - cpu_before[i]) / wall;
    s.cores_each[sampled[i].name] = cores;
    s.cores += cores;
  }
  s.client_cores = (own_cpu_seconds() - client_cpu_before) / wall;
  return s;
}

// The runs at one concurrency, summed up: medians, and the total of answers.
class Runs {
 public:
  void add(const RunStats& s) {
    for (const auto& [name, used] : s.cores_each) cores_each_[name].push_back(used);
    rate_.push_back(s.per_second);
    p50_.push_back(s.p50_ms);
    p99_.push_back(s.p99_ms);
    cores_.push_back(s.cores);
    client_cores_.push_back(s.client_cores);
    ok_ += s.ok;
    failed_ += s.failed;
  }

  json summary() const {
    json out = {{"per_second", median(rate_)}, {"p50_ms", median(p50_)}, {"p99_ms", median(p99_)},
                {"server_cores_used", median(cores_)}, {"client_cores_used", median(client_cores_)},
                {"ok", ok_}, {"failed", failed_}, {"runs_per_second", rate_}};
    for (const auto& [name, used] : cores_each_) out["cores_each"][name] = median(used);
    return out;
  }

 private:
  std::vector<double> rate_, p50_, p99_, cores_, client_cores_;
  std::map<std::string, std::vector<double>> cores_each_;
  int ok_ = 0, failed_ = 0;
};

// A warm-up run, then kRepetitions runs at each concurrency; medians per concurrency, spread over
// the replicas at `ports`, each of `sampled` read for CPU ("cores_each"). `bodies(n)` returns n
// fresh request bodies.
json measure_spread(const std::vector<std::uint16_t>& ports, const std::string& path,
                    const std::function<std::vector<std::string>(int)>& bodies,
                    const std::function<bool(int, const std::string&)>& accepted, const std::vector<Sampled>& sampled,
                    const std::vector<int>& levels, const std::function<int(int)>& per_run) {
  load_spread(ports, path, bodies(64), 8, accepted, {});
  json out = json::object();
  for (int clients : levels) {
    Runs runs;
    for (int rep = 0; rep < kRepetitions; ++rep)
      runs.add(load_spread(ports, path, bodies(per_run(clients)), clients, accepted, sampled));
    out[std::to_string(clients)] = runs.summary();
  }
  return out;
}

// The same against one server, whose CPU (when `server` > 0) is read as "server".
json measure_levels(std::uint16_t port, const std::string& path, const std::function<std::vector<std::string>(int)>& bodies,
                    const std::function<bool(int, const std::string&)>& accepted, pid_t server,
                    const std::vector<int>& levels, const std::function<int(int)>& per_run) {
  std::vector<Sampled> sampled;
  if (server > 0) sampled.push_back({"server", [server] { return cpu_seconds(server); }});
  return measure_spread({port}, path, bodies, accepted, sampled, levels, per_run);
}

// Hands out consecutive slices of a pre-made list of request bodies.
struct BodyPool {
  std::vector<std::string> all;
  std::size_t used = 0;
  std::vector<std::string> take(int n) {
    if (used + n > all.size()) throw std::runtime_error("bench: not enough pre-made CSRs");
    std::vector<std::string> out(all.begin() + used, all.begin() + used + n);
    used += n;
    return out;
  }
};

std::vector<std::string> enroll_bodies(const std::string& token, const std::vector<std::string>& csrs) {
  std::vector<std::string> out;
  for (const auto& csr : csrs) out.push_back(protocol::to_json(protocol::EnrollRequest{token, csr}));
  return out;
}

// Requests per measured run without the directory: long enough to span several fsync batches.
int per_run(int clients) { return std::max(400, 25 * clients); }

int pool_size() {
  int n = 64;
  for (int c : levels()) n += kRepetitions * per_run(c);
  return n;
}

bool enrolled(int status, const std::string&) { return status == 201; }

// A signing service of rows 1 and 2, started and ready to be measured; without a server, `info`
// says why it is not measured.
struct Target {
  std::string key;  // its part of the results: ca, cfssl, cfssl_db, step_ca
  json info = json::object();
  std::optional<test::BackgroundProcess> server = std::nullopt;
  std::uint16_t port = 0;
  std::string path{};
  std::function<bool(int, const std::string&)> accepted = nullptr;
  BodyPool pool{};
  std::function<void(json&)> after = nullptr;  // adds to `info` what can be read once it is stopped
};

Target not_measured(std::string key, std::string why) {
  return Target{.key = std::move(key), .info = {{"measured", false}, {"why", std::move(why)}}};
}

// Rows 1 and 2 are measured in turn rather than one service after the other: a warm-up each, then
// at each concurrency kRepetitions rounds of one run per service, medians per service. A VM's
// speed drifts by tens of percent over minutes; in turn, every service sees the same drift, and
// the ratios between them hold. Results go to results[key].
void measure_in_turn(std::vector<Target>& targets, json& results) {
  std::erase_if(targets, [&](Target& t) {
    if (!t.server) results[t.key] = t.info;
    return !t.server;
  });
  for (Target& t : targets) load_spread({t.port}, t.path, t.pool.take(64), 8, t.accepted, {});
  for (int clients : levels()) {
    std::vector<Runs> runs(targets.size());
    for (int rep = 0; rep < kRepetitions; ++rep)
      for (std::size_t i = 0; i < targets.size(); ++i) {
        Target& t = targets[i];
        const pid_t pid = t.server->pid();
        runs[i].add(load_spread({t.port}, t.path, t.pool.take(per_run(clients)), clients, t.accepted,
                                {{"server", [pid] { return cpu_seconds(pid); }}}));
      }
    for (std::size_t i = 0; i < targets.size(); ++i) targets[i].info[std::to_string(clients)] = runs[i].summary();
  }
  for (Target& t : targets) {
    t.server->stop();
    if (t.after) t.after(t.info);
    results[t.key] = std::move(t.info);
  }
  targets.clear();
}

// Sets every failure limit of a CA directory's config.json to 0 (off): a benchmark must not be
// throttled by the defences against guessing.
void disable_rate_limits(const fs::path& config_file) {
  std::ifstream in(config_file);
  json config = json::parse(in);
  config["rate_limits"]["address_failures"] = 0;
  config["rate_limits"]["token_failures"] = 0;
  // The load comes from one address, with up to 64 keep-alive connections at once.
  config["max_connections_per_address"] = 1024;
  config["max_connections"] = 1024;
  std::ofstream(config_file) << config.dump(2);
}

// Row 1: `evpn-ca serve --directory none`.
Target prepare_ca(const fs::path& work) {
  const fs::path dir = work / "ca";
  const std::uint16_t port = test::free_port();
  must_run({EVPN_CA_BIN, "init", "--dir", dir, "--xmpp-domain", "evpn.test", "--directory", "none", "--listen",
            "127.0.0.1:" + std::to_string(port)});
  disable_rate_limits(dir / "config.json");
  must_run({EVPN_CA_BIN, "group", "add", "--dir", dir, "--name", "bench", "--overlay", "101000F"});
  const std::string token =
      must_run({EVPN_CA_BIN, "token", "create", "--dir", dir, "--group", "bench", "--uses", "100000", "--ttl", "2h"});
  Target t{.key = "ca",
           .info = {{"synchronous", "FULL, WAL, group commit (ca-service/store/store.cpp)"},
                    {"worker_threads", "16 (max(16, 4 x cores), ca-service/service.cpp)"}},
           .server = test::BackgroundProcess({EVPN_CA_BIN, "serve", "--dir", dir}, work / "ca-serve.log"),
           .port = port,
           .path = "/v1/enroll",
           .accepted = enrolled,
           .pool = {enroll_bodies(token, make_csrs("ca", pool_size()))}};
  if (!test::wait_for_port(port, std::chrono::seconds(10))) throw std::runtime_error("evpn-ca serve did not start");
  return t;
}

// Rows 7: `evpn-ca serve --directory none` on PostgreSQL (fsync on, as the SQLite row syncs): one
// replica, then two on the same database with the clients spread over both. CPU per process: each
// replica, and the PostgreSQL server with its backends.
json bench_postgres(const fs::path& work) {
  if (!test::PostgresServer::installed()) return {{"measured", false}, {"why", "PostgreSQL is not installed"}};
  test::PostgresServer postgres(test::PostgresServer::Options{.fsync = true});
  postgres.start();
  json out = {{"measured", true}};
  for (int replicas : {1, 2}) {
    const std::string name = std::to_string(replicas) + "-replica" + (replicas > 1 ? "s" : "");
    const fs::path dir = work / ("pg-" + name);
    std::vector<std::uint16_t> ports{test::free_port()};
    must_run({EVPN_CA_BIN, "init", "--dir", dir, "--xmpp-domain", "evpn.test", "--directory", "none", "--listen",
              "127.0.0.1:" + std::to_string(ports[0]), "--store", postgres.create_database("bench" + std::to_string(replicas)),
              "--store-password-file", postgres.password_file()});
    disable_rate_limits(dir / "config.json");
    must_run({EVPN_CA_BIN, "group", "add", "--dir", dir, "--name", "bench", "--overlay", "101000F"});
    const std::string token =
        must_run({EVPN_CA_BIN, "token", "create", "--dir", dir, "--group", "bench", "--uses", "100000", "--ttl", "2h"});
    std::vector<fs::path> dirs{dir};
    // Replica b: a copy of the directory with a "listen" of its own, as the README makes one.
    for (int r = 1; r < replicas; ++r) {
      ports.push_back(test::free_port());
      dirs.push_back(work / ("pg-" + name + "-" + std::to_string(r)));
      fs::copy(dir, dirs.back(), fs::copy_options::recursive);
      std::ifstream in(dirs.back() / "config.json");
      json config = json::parse(in);
      config["listen"] = "127.0.0.1:" + std::to_string(ports.back());
      config["metrics_listen"] = "";
      std::ofstream(dirs.back() / "config.json") << config.dump(2);
    }
    BodyPool pool{enroll_bodies(token, make_csrs("pg" + std::to_string(replicas), pool_size()))};
    std::vector<test::BackgroundProcess> serves;
    std::vector<Sampled> sampled;
    for (std::size_t r = 0; r < dirs.size(); ++r) {
      serves.emplace_back(std::vector<std::string>{EVPN_CA_BIN, "serve", "--dir", dirs[r]},
                          work / ("pg-" + name + "-serve-" + std::to_string(r) + ".log"));
      if (!test::wait_for_port(ports[r], std::chrono::seconds(10)))
        throw std::runtime_error("evpn-ca serve on PostgreSQL did not start");
      sampled.push_back({"ca" + std::to_string(r), [pid = serves.back().pid()] { return cpu_seconds(pid); }});
    }
    sampled.push_back({"postgresql", [&postgres] { return tree_cpu_seconds(postgres.pid()); }});
    out[name] = measure_spread(ports, "/v1/enroll", [&](int n) { return pool.take(n); }, enrolled, sampled,
                               levels(), per_run);
  }
  return out;
}

// A P-256 CA made by openssl in `dir` (ca.pem, ca-key.pem), whose certificate also serves TLS on 127.0.0.1.
void openssl_ca(const fs::path& dir, const std::string& name) {
  fs::create_directories(dir);
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            dir / "ca-key.pem", "-out", dir / "ca.pem", "-subj", "/CN=" + name, "-days", "2",
            "-addext", "subjectAltName=IP:127.0.0.1"});
}

// The certificates table that cfssl's certdb writes to, as its SQLite migration for cfssl 1.2
// creates it (cfssl's sign inserts these eight columns). cfssl does not create it itself.
constexpr const char* kCfsslCertdbSchema = R"(
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier) REFERENCES certificates(serial_number, authority_key_identifier)
);)";

void sqlite_exec(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  const int opened = sqlite3_open(file.c_str(), &db);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, sqlite3_close);
  char* message = nullptr;
  if (opened != SQLITE_OK || sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string what = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    throw std::runtime_error("cannot create " + file.string() + ": " + what);
  }
}

std::size_t count_rows(const fs::path& file, const char* table) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, sqlite3_close);
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = std::string("SELECT count(*) FROM ") + table;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) return 0;
  const std::size_t n = sqlite3_step(stmt) == SQLITE_ROW ? static_cast<std::size_t>(sqlite3_column_int64(stmt, 0)) : 0;
  sqlite3_finalize(stmt);
  return n;
}

// Row 2: `cfssl serve` over HTTPS with a CA made by openssl, signing the same kind of CSRs; with
// `record`, cfssl's own SQLite certificate database (-db-config) records every certificate.
Target prepare_cfssl(const fs::path& work, bool record) {
  const std::string key = record ? "cfssl_db" : "cfssl";
  if (test::run({"sh", "-c", "command -v cfssl"}).exit_code != 0) return not_measured(key, "cfssl not installed");
  const fs::path dir = work / (record ? "cfssl-db" : "cfssl");
  openssl_ca(dir, "bench cfssl CA");
  std::vector<std::string> argv = {"cfssl", "serve", "-address", "127.0.0.1", "-port", "", "-ca", dir / "ca.pem",
                                   "-ca-key", dir / "ca-key.pem", "-tls-cert", dir / "ca.pem", "-tls-key",
                                   dir / "ca-key.pem"};
  const fs::path db = dir / "certdb.sqlite";
  if (record) {
    sqlite_exec(db, kCfsslCertdbSchema);
    std::ofstream(dir / "db-config.json") << json{{"driver", "sqlite3"}, {"data_source", db.string()}}.dump();
    argv.insert(argv.end(), {"-db-config", dir / "db-config.json"});
  }
  const std::uint16_t port = test::free_port();
  argv[5] = std::to_string(port);
  Target t{.key = key,
           .info = {{"measured", true},
                    {"durable_store", record ? "cfssl certdb, SQLite as cfssl opens it (rollback journal, "
                                               "synchronous=FULL, one commit per certificate)"
                                             : "none (cfssl serve without -db-config records nothing)"}},
           .server = test::BackgroundProcess(argv, dir / "cfssl.log"),
           .port = port,
           .path = "/api/v1/cfssl/sign",
           .accepted = [](int status, const std::string& body) {
             return status == 200 && body.find("\"success\":true") != std::string::npos;
           }};
  if (record) t.after = [db](json& info) { info["rows_recorded"] = count_rows(db, "certificates"); };
  if (!test::wait_for_port(port, std::chrono::seconds(10)))
    return not_measured(key, "cfssl serve did not start: " + test::read_file(dir / "cfssl.log"));
  for (const auto& csr : make_csrs(key, pool_size())) t.pool.all.push_back(json{{"certificate_request", csr}}.dump());
  return t;
}

std::string base64url(std::string_view bytes) {
  std::string out = crypto::to_base64(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

// A JWK provisioner's P-256 key: its public half as ca.json names it, and one-time tokens (ES256
// JWTs) that step-ca accepts for POST /1.0/sign of a CSR with CN `subject`.
class JwkProvisioner {
 public:
  JwkProvisioner() : key_(must(crypto::Key::generate(crypto::KeyType::ec_p256))) {
    unsigned char point[65];
    std::size_t size = 0;
    if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &size) != 1 ||
        size != 65)
      throw std::runtime_error("cannot read the provisioner's public key");
    const std::string bytes(reinterpret_cast<const char*>(point), size);
    x_ = base64url(bytes.substr(1, 32));
    y_ = base64url(bytes.substr(33, 32));
  }

  json public_jwk() const {
    return {{"use", "sig"}, {"kty", "EC"}, {"kid", kKeyId}, {"crv", "P-256"}, {"alg", "ES256"}, {"x", x_}, {"y", y_}};
  }

  std::string token(const std::string& name, const std::string& subject, const std::string& audience) const {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const json header = {{"alg", "ES256"}, {"kid", kKeyId}, {"typ", "JWT"}};
    const json claims = {{"iss", name}, {"sub", subject}, {"aud", audience}, {"sans", {subject}},
                         {"iat", now}, {"nbf", now - 60}, {"exp", now + 2 * 3600},
                         {"jti", crypto::to_hex(crypto::random_bytes(16))}};
    const std::string input = base64url(header.dump()) + "." + base64url(claims.dump());
    return input + "." + base64url(es256(input));
  }

 private:
  static constexpr const char* kKeyId = "evpn-bench";

  template <class T>
  static T must(Result<T> r) {
    if (!r) throw std::runtime_error(r.error().detail);
    return std::move(*r);
  }

  // JWS wants the signature as r || s, 32 bytes each, not DER.
  std::string es256(const std::string& input) const {
    crypto::MdCtx ctx(EVP_MD_CTX_new());
    unsigned char der[80];
    std::size_t der_size = sizeof der;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), der, &der_size, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
      throw std::runtime_error("cannot sign a token");
    const unsigned char* p = der;
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_size)),
                                                              ECDSA_SIG_free);
    std::string out(64, '\0');
    if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(out.data()), 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(out.data()) + 32, 32) != 32)
      throw std::runtime_error("cannot encode a token signature");
    return out;
  }

  crypto::Key key_;
  std::string x_, y_;
};

// Row 2: step-ca (EVPN_BENCH_STEP_CA, installed by bench/run.sh) with the database `step ca init`
// configures (badger v2, which syncs every write), a root and an intermediate made by openssl,
// and one JWK provisioner. Each request is POST /1.0/sign with a CSR and a one-time token made
// before the clock starts, as the CA's enrollment tokens are: step-ca verifies the token's
// signature, records the token as used and the certificate, then answers.
Target prepare_stepca(const fs::path& work) {
  const char* binary = std::getenv("EVPN_BENCH_STEP_CA");
  if (!binary || !*binary) {
    const char* why = std::getenv("EVPN_BENCH_STEP_CA_SKIP");
    return not_measured("step_ca", why && *why ? why : "EVPN_BENCH_STEP_CA is not set (bench/run.sh installs step-ca)");
  }
  const fs::path dir = work / "step-ca";
  fs::create_directories(dir);
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            dir / "root-key.pem", "-out", dir / "root.pem", "-subj", "/CN=bench step-ca root", "-days", "2"});
  must_run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            dir / "intermediate-key.pem", "-out", dir / "intermediate.csr", "-subj", "/CN=bench step-ca intermediate"});
  std::ofstream(dir / "intermediate.ext") << "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                             "keyUsage=critical,keyCertSign,cRLSign\n"
                                             "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
  must_run({"openssl", "x509", "-req", "-in", dir / "intermediate.csr", "-CA", dir / "root.pem", "-CAkey",
            dir / "root-key.pem", "-set_serial", "2", "-days", "2", "-extfile", dir / "intermediate.ext", "-out",
            dir / "intermediate.pem"});
  const JwkProvisioner provisioner;
  const std::uint16_t port = test::free_port();
  const json config = {
      {"root", (dir / "root.pem").string()},
      {"crt", (dir / "intermediate.pem").string()},
      {"key", (dir / "intermediate-key.pem").string()},
      {"address", "127.0.0.1:" + std::to_string(port)},
      {"dnsNames", {"127.0.0.1"}},
      {"logger", {{"format", "text"}}},
      {"db", {{"type", "badgerv2"}, {"dataSource", (dir / "db").string()}}},
      {"authority", {{"provisioners", {{{"type", "JWK"}, {"name", "bench"}, {"key", provisioner.public_jwk()}}}}}},
      {"tls", {{"minVersion", 1.2}, {"maxVersion", 1.3}, {"renegotiation", false}}}};
  std::ofstream(dir / "ca.json") << config.dump(2);
  const char* version = std::getenv("EVPN_BENCH_STEP_CA_VERSION");
  Target t{.key = "step_ca",
           .info = {{"measured", true},
                    {"version", version ? version : must_run({binary, "version"})},
                    {"durable_store", "badger v2 as step ca init configures it (SyncWrites on): the used token and "
                                      "the certificate"}},
           .server = test::BackgroundProcess({binary, dir / "ca.json"}, dir / "step-ca.log"),
           .port = port,
           .path = "/1.0/sign",
           .accepted = enrolled};
  if (!test::wait_for_port(port, std::chrono::seconds(30)))
    return not_measured("step_ca", "step-ca did not start: " + test::read_file(dir / "step-ca.log"));
  const std::vector<std::string> csrs = make_csrs("stepca", pool_size());
  for (std::size_t i = 0; i < csrs.size(); ++i) {
    const std::string subject = "stepca-" + std::to_string(i);
    t.pool.all.push_back(json{{"csr", csrs[i]}, {"ott", provisioner.token("bench", subject, "https://127.0.0.1/1.0/sign")}}.dump());
  }
  return t;
}

// Row 3: the manual path, one node after another: `openssl req -new` + `openssl x509 -req`.
json bench_manual(const fs::path& work) {
  const fs::path dir = work / "manual";
  fs::create_directories(dir);
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            dir / "ca-key.pem", "-out", dir / "ca.pem", "-subj", "/CN=manual CA", "-days", "2"});
  constexpr int nodes = 30;
  for (int i = 0; i < nodes; ++i) {  // node keys exist before the clock starts, as in the guide
    auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
    std::ofstream(dir / ("node" + std::to_string(i) + ".key")) << key->to_pem();
  }
  auto one_node = [&](int i) {
    const std::string n = (dir / ("node" + std::to_string(i))).string();
    must_run({"openssl", "req", "-new", "-key", n + ".key", "-subj", "/CN=node" + std::to_string(i), "-out", n + ".csr"});
    must_run({"openssl", "x509", "-req", "-in", n + ".csr", "-CA", dir / "ca.pem", "-CAkey", dir / "ca-key.pem",
              "-set_serial", std::to_string(1000 + i), "-days", "30", "-out", n + ".crt"});
  };
  for (int i = 0; i < 5; ++i) one_node(i);  // warm-up
  std::vector<double> rates;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    const auto start = Steady::now();
    for (int i = 0; i < nodes; ++i) one_node(i);
    rates.push_back(nodes / seconds_since(start));
  }
  return {{"nodes_per_second", median(rates)}, {"runs_per_second", rates}, {"nodes_per_run", nodes}};
}

// Row 4: `openssl speed` sign/s and verify/s for P-256 and RSA-2048 (one core).
json bench_speed() {
  const std::string out = must_run({"openssl", "speed", "-seconds", "2", "ecdsap256", "rsa2048"});
  auto rates = [&](const std::string& pattern) -> json {
    std::smatch m;
    const std::regex line(pattern + R"([^\n]*?([0-9.]+)\s+([0-9.]+)\s*(\n|$))");
    if (!std::regex_search(out, m, line)) throw std::runtime_error("cannot parse openssl speed output:\n" + out);
    const double sign = std::stod(m[1]), verify = std::stod(m[2]);
    return {{"sign_per_second", sign}, {"verify_per_second", verify},
            {"enrollments_per_second_limit", 1 / (1 / sign + 1 / verify)}};
  };
  return {{"ecdsa_p256", rates(R"(256 bits ecdsa \(nistp256\))")}, {"rsa2048", rates(R"(rsa 2048 bits)")}};
}

// Parses "/usr/bin/time -v" output: peak RSS (kB) and user + system CPU seconds.
std::pair<double, double> time_v(const std::string& err) {
  std::smatch m;
  double rss = 0, cpu = 0;
  if (std::regex_search(err, m, std::regex(R"(Maximum resident set size \(kbytes\): (\d+))"))) rss = std::stod(m[1]);
  for (const char* what : {"User time", "System time"})
    if (std::regex_search(err, m, std::regex(std::string(what) + R"( \(seconds\): ([0-9.]+))"))) cpu += std::stod(m[1]);
  return {rss, cpu};
}

// Rows 5 and 6: a real ejabberd provisioned by `evpn-ca serve`, the first-boot storm, the agent.
json bench_directory(int storm_agents, int storm_parallel) {
  test::Deployment d("evpn-bench");
  d.stop_ca();
  disable_rate_limits(d.ca_dir() / "config.json");
  d.start_ca();
  d.add_group("bench", "101000F");
  const std::string token = d.token("bench", {"--uses", "100000", "--ttl", "2h"});
  const auto url = net::parse_url(d.ca_url());
  json out;

  // Enrollments/s through the directory: 8 keep-alive clients (the 64-client runs would mostly
  // measure ejabberd's queue), warm-up + kRepetitions runs of 100.
  BodyPool pool{enroll_bodies(token, make_csrs("dir", 64 + kRepetitions * 100))};
  out["enroll"] = measure_levels(url->port, "/v1/enroll", [&](int n) { return pool.take(n); }, enrolled, 0, {8},
                                 [](int) { return 100; });

  // The first-boot storm: real `evpn-agent enroll` processes, storm_parallel at a time.
  std::vector<double> agent_seconds(storm_agents, 0);
  std::vector<int> exit_codes(storm_agents, -1);
  std::vector<test::TestNode> nodes;
  for (int i = 0; i < storm_agents; ++i) nodes.push_back(d.node("storm" + std::to_string(i)));
  std::atomic<int> next{0};
  const auto storm_start = Steady::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < storm_parallel; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next++) < storm_agents && Steady::now() - storm_start < std::chrono::seconds(600);) {
        const auto t0 = Steady::now();
        exit_codes[i] = test::run(d.enroll_command(nodes[i], token), std::chrono::seconds(120)).exit_code;
        agent_seconds[i] = seconds_since(t0);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double storm_total = seconds_since(storm_start);
  // Agents the 600 s bound left unstarted keep exit code -1 and count as not enrolled, not as failed.
  std::vector<double> ran;
  int enrolled_agents = 0, failures = 0;
  for (int i = 0; i < storm_agents; ++i) {
    if (exit_codes[i] == -1) continue;
    ran.push_back(agent_seconds[i]);
    (exit_codes[i] == 0 ? enrolled_agents : failures)++;
  }
  out["storm"] = {{"agents", storm_agents}, {"parallel", storm_parallel}, {"total_seconds", storm_total},
                  {"enrolled", enrolled_agents}, {"failures", failures},
                  {"not_started", storm_agents - static_cast<int>(ran.size())},
                  {"p50_seconds", percentile(ran, 0.5)}, {"p99_seconds", percentile(ran, 0.99)}};

  // The agent alone: whole `enroll` under /usr/bin/time -v (5 runs, medians), and its phases
  // measured separately: key + CSR in-process, the CA round trip with the agent's own HttpClient
  // (a new connection, as the agent makes), the XMPP login as `evpn-agent check` reports it.
  std::vector<double> wall, rss, cpu, keygen, round_trip, login;
  for (int i = 0; i < 5; ++i) {
    test::TestNode node = d.node("agent" + std::to_string(i));
    std::vector<std::string> argv = d.enroll_command(node, token);
    argv.insert(argv.begin(), {"/usr/bin/time", "-v"});
    const auto t0 = Steady::now();
    const test::RunResult r = test::run(argv, std::chrono::seconds(60));
    wall.push_back(seconds_since(t0) * 1000);
    if (r.exit_code != 0) throw std::runtime_error("evpn-agent enroll failed: " + r.err);
    const auto [kb, cpu_s] = time_v(r.err);
    rss.push_back(kb / 1024);
    cpu.push_back(cpu_s * 1000);
    const json check = json::parse(must_run({EVPN_AGENT_BIN, "check", "--json", "--state-dir", node.state()}), nullptr, false);
    for (const auto& c : check["checks"])
      if (c["name"] == "xmpp-login") login.push_back(c["seconds"].get<double>() * 1000);
  }
  net::ClientTls tls;
  tls.ca_pem = test::read_file(d.ca_dir() / "ca.crt");
  const net::HttpClient client(tls);
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Steady::now();
    auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
    auto csr = crypto::Csr::create(*key, "phase" + std::to_string(i));
    keygen.push_back(seconds_since(t0) * 1000);
    net::HttpRequest req{"POST", *url, {{"Content-Type", "application/json"}},
                         protocol::to_json(protocol::EnrollRequest{token, csr->to_pem()})};
    req.url.target = "/v1/enroll";
    const auto t1 = Steady::now();
    auto res = client.send(req);
    if (!res || res->status != 201) throw std::runtime_error("phase enrollment failed");
    round_trip.push_back(seconds_since(t1) * 1000);
  }
  const double total = median(wall);
  const double rest = total - median(keygen) - median(round_trip) - median(login);
  out["agent"] = {{"enroll_wall_ms", total}, {"peak_rss_mb", median(rss)}, {"cpu_ms", median(cpu)},
                  {"keygen_csr_ms", median(keygen)}, {"ca_round_trip_ms", median(round_trip)},
                  {"xmpp_login_ms", median(login)}, {"rest_ms", rest},
                  {"rest_is", "wall minus the three medians: process start, GET /v1/roots, checks, file writes; "
                              "medians of separate runs, so it can come out negative"}};
  return out;
}

double stripped_size_mb(const fs::path& work) {
  const fs::path copy = work / "evpn-agent.stripped";
  must_run({"strip", "-o", copy, EVPN_AGENT_BIN});
  return static_cast<double>(fs::file_size(copy)) / (1024 * 1024);
}

// The peers of row 2, in the table's order: name in results.json, label, durable.
struct Peer {
  const char* key;
  const char* label;
  bool durable;
};
constexpr Peer kPeers[] = {{"cfssl", "cfssl sign, no record", false},
                           {"cfssl_db", "cfssl sign + SQLite certdb", true},
                           {"step_ca", "step-ca sign + badger", true}};

bool measured(const json& r, const char* key) { return r.contains(key) && r[key].value("measured", false); }

std::string fixed(double v, int digits = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// Rows 7: enrollments/s on SQLite (row 1's figures) and on PostgreSQL, with the CPU each process used.
std::vector<std::array<std::string, 3>> store_rows(const json& r) {
  std::vector<std::array<std::string, 3>> rows;
  const json& pg = r["postgres"];
  if (!pg.value("measured", false)) return {{"7 CA on PostgreSQL", "not measured", pg.value("why", "")}};
  for (const char* setup : {"sqlite", "1-replica", "2-replicas"})
    for (int c : levels()) {
      if (std::string(setup) == "sqlite" && !r.contains("ca")) continue;
      const json& o = std::string(setup) == "sqlite" ? r["ca"][std::to_string(c)] : pg[setup][std::to_string(c)];
      std::string cpu = "cores used:";
      if (o.contains("cores_each"))
        for (const auto& [process, cores] : o["cores_each"].items()) cpu += " " + process + " " + fixed(cores, 2);
      else
        cpu += " ca " + fixed(o["server_cores_used"], 2);
      rows.push_back({std::string("7 ") + setup + ", " + std::to_string(c) + " clients",
                      fixed(o["per_second"]) + "/s p50 " + fixed(o["p50_ms"]) + " ms p99 " + fixed(o["p99_ms"]) + " ms",
                      cpu + ", clients " + fixed(o["client_cores_used"], 2)});
    }
  return rows;
}

void print_rows(const std::vector<std::array<std::string, 3>>& rows) {
  std::size_t w0 = 0, w1 = 0;
  for (const auto& row : rows) w0 = std::max(w0, row[0].size()), w1 = std::max(w1, row[1].size());
  for (const auto& row : rows)
    std::printf("| %-*s | %-*s | %s |\n", static_cast<int>(w0), row[0].c_str(), static_cast<int>(w1), row[1].c_str(),
                row[2].c_str());
}


void print_table(const json& r) {
  std::vector<std::array<std::string, 3>> rows;
  auto f = [](double v, int digits = 1) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return std::string(b);
  };
  auto rate = [](const json& part, int clients) { return part[std::to_string(clients)]["per_second"].get<double>(); };
  auto figure = [&](const json& o) {
    return f(o["per_second"]) + "/s p50 " + f(o["p50_ms"]) + " ms p99 " + f(o["p99_ms"]) + " ms" +
           (o["failed"].get<int>() > 0 ? ", " + std::to_string(o["failed"].get<int>()) + " failed" : "");
  };
  const bool has_ca = r.contains("ca");
  if (has_ca)
    for (int c : levels()) {
      const json& o = r["ca"][std::to_string(c)];
      rows.push_back({"1 CA enroll, " + std::to_string(c) + " clients", figure(o),
                      "CA used " + f(o["server_cores_used"], 2) + " cores, clients " + f(o["client_cores_used"], 2)});
    }
  for (const Peer& peer : kPeers) {
    if (!r.contains(peer.key)) continue;
    const json& p = r[peer.key];
    for (int c : levels()) {
      const std::string row = std::string("2 ") + peer.label + ", " + std::to_string(c) + " clients";
      if (!measured(r, peer.key)) {
        rows.push_back({row, "not measured", p.value("why", "")});
        break;
      }
      const json& o = p[std::to_string(c)];
      rows.push_back({row, figure(o),
                      (has_ca ? "ours/this " + f(rate(r["ca"], c) / rate(p, c), 2) + "; " : std::string()) + "used " +
                          f(o["server_cores_used"], 2) + " cores, clients " + f(o["client_cores_used"], 2)});
    }
  }
  if (has_ca) {
    for (int c : levels()) {
      double best = 0;
      std::string best_label;
      for (const Peer& peer : kPeers)
        if (peer.durable && measured(r, peer.key) && rate(r[peer.key], c) > best)
          best = rate(r[peer.key], c), best_label = peer.label;
      if (best > 0)
        rows.push_back({"2 ours / best durable peer, " + std::to_string(c) + " clients",
                        f(rate(r["ca"], c) / best, 2) + " (" + best_label + ")", "target >= 2"});
    }
    if (measured(r, "cfssl") && r["ca"].contains("64"))
      rows.push_back({"2 ours / cfssl without record, 64 clients", f(rate(r["ca"], 64) / rate(r["cfssl"], 64), 2),
                      "target >= 1"});
    for (int c : levels()) {
      const json& o = r["ca"][std::to_string(c)];
      rows.push_back({"4 CA CPU per enrollment, " + std::to_string(c) + " clients",
                      f(1e6 * o["server_cores_used"].get<double>() / o["per_second"].get<double>(), 0) + " us", ""});
    }
  }
  const bool all_levels = has_ca && r["ca"].contains("1") && r["ca"].contains("8") && r["ca"].contains("64");
  if (r.contains("manual") && all_levels) {
    const double manual = r["manual"]["nodes_per_second"];
    rows.push_back({"3 manual openssl req+x509", f(manual) + " nodes/s",
                    "ours(1 client)/manual " + f(rate(r["ca"], 1) / manual, 1) + ", ours(64)/manual " +
                        f(rate(r["ca"], 64) / manual, 1)});
  }
  if (r.contains("speed")) {
    const json& p = r["speed"]["ecdsa_p256"];
    const double limit = p["enrollments_per_second_limit"];
    rows.push_back({"4 openssl speed P-256", f(p["sign_per_second"], 0) + " sign/s, " + f(p["verify_per_second"], 0) +
                        " verify/s", "limit " + f(limit, 0) + " enroll/s/core"});
    const json& rsa = r["speed"]["rsa2048"];
    rows.push_back({"4 openssl speed RSA-2048", f(rsa["sign_per_second"], 0) + " sign/s, " +
                        f(rsa["verify_per_second"], 0) + " verify/s", "limit " +
                        f(rsa["enrollments_per_second_limit"], 0) + " enroll/s/core (reference)"});
    if (all_levels) {
      const json& c64 = r["ca"]["64"];
      const double per_core = c64["per_second"].get<double>() / std::max(0.01, c64["server_cores_used"].get<double>());
      rows.push_back({"4 CA per core used (64 clients)", f(per_core) + " enroll/s/core",
                      f(100 * per_core / limit) + "% of P-256 limit (target >= 50%)"});
    }
  }
  if (r.contains("directory") && all_levels) {
    const json& d = r["directory"];
    const json& e = d["enroll"]["8"];
    rows.push_back({"5 CA + ejabberd, 8 clients", figure(e),
                    "vs none: " + f(e["per_second"].get<double>() / rate(r["ca"], 8), 2)});
    const json& s = d["storm"];
    rows.push_back({"5 storm " + std::to_string(s["agents"].get<int>()) + " agents, " +
                        std::to_string(s["parallel"].get<int>()) + " at a time",
                    std::to_string(s["enrolled"].get<int>()) + " enrolled in " + f(s["total_seconds"]) + " s, p50 " +
                        f(s["p50_seconds"], 2) + " s p99 " + f(s["p99_seconds"], 2) + " s, " +
                        std::to_string(s["failures"].get<int>()) + " failed, " +
                        std::to_string(s["not_started"].get<int>()) + " not started (600 s bound)",
                    "target: 1000 in < 60 s, 0 failures"});
    const json& a = d["agent"];
    rows.push_back({"6 agent enroll wall", f(a["enroll_wall_ms"]) + " ms: key+CSR " + f(a["keygen_csr_ms"], 2) +
                        ", CA " + f(a["ca_round_trip_ms"]) + ", XMPP " + f(a["xmpp_login_ms"]) + ", rest " +
                        f(a["rest_ms"]), "CPU " + f(a["cpu_ms"]) + " ms (target own work < 50 ms)"});
    rows.push_back({"6 agent peak RSS", f(a["peak_rss_mb"], 2) + " MB", "target < 10 MB"});
  } else if (r.contains("directory_error")) {
    rows.push_back({"5/6 directory, storm, agent", "not measured", r.value("directory_error", "")});
  }
  if (r.contains("agent_stripped_mb")) rows.push_back({"6 agent stripped binary", f(r["agent_stripped_mb"], 2) + " MB", ""});
  if (r.contains("postgres"))
    for (auto& row : store_rows(r)) rows.push_back(std::move(row));
  print_rows(rows);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: evpn-bench OUTPUT.json [STORM_AGENTS] [STORM_PARALLEL]\n";
    return 2;
  }
  const int storm_agents = argc > 2 ? std::stoi(argv[2]) : 1000;
  const int storm_parallel = argc > 3 ? std::stoi(argv[3]) : 32;
  try {
    test::TempDir work("evpn-bench");
    json r;
    std::vector<Target> in_turn;  // rows 1 and 2, measured together after the other parts
    std::smatch model;
    const std::string cpuinfo = test::read_file("/proc/cpuinfo");
    std::regex_search(cpuinfo, model, std::regex(R"(model name\s*:\s*([^\n]*))"));
    r["machine"] = {{"nproc", std::thread::hardware_concurrency()}, {"cpu", model.size() > 1 ? model[1].str() : ""}};
    // The parts in the order they run; EVPN_BENCH_ONLY=a,b,... runs only those (for profiling one).
    const std::vector<std::pair<std::string, std::function<void()>>> parts = {
        {"speed", [&] { r["speed"] = bench_speed(); }},
        {"ca", [&] { in_turn.push_back(prepare_ca(work.path())); }},
        {"postgres", [&] { r["postgres"] = bench_postgres(work.path()); }},
        {"cfssl", [&] { in_turn.push_back(prepare_cfssl(work.path(), false)); }},
        {"cfssl-db", [&] { in_turn.push_back(prepare_cfssl(work.path(), true)); }},
        {"step-ca", [&] { in_turn.push_back(prepare_stepca(work.path())); }},
        {"manual", [&] { r["manual"] = bench_manual(work.path()); }},
        {"directory", [&] {
           try {
             r["directory"] = bench_directory(storm_agents, storm_parallel);
           } catch (const std::exception& e) {
             r["directory_error"] = e.what();
           }
         }},
        {"agent-size", [&] { r["agent_stripped_mb"] = stripped_size_mb(work.path()); }}};
    std::string only = std::getenv("EVPN_BENCH_ONLY") ? std::getenv("EVPN_BENCH_ONLY") : "";
    std::istringstream names(std::regex_replace(only, std::regex(","), " "));
    for (std::string name; names >> name;)
      if (std::none_of(parts.begin(), parts.end(), [&](const auto& p) { return p.first == name; }))
        throw std::runtime_error("EVPN_BENCH_ONLY names '" + name +
                                 "': use a comma-separated list of speed, ca, postgres, cfssl, cfssl-db, step-ca, manual, "
                                 "directory, agent-size");
    const std::string wanted = "," + only + ",";
    for (const auto& [name, run] : parts) {
      if (!only.empty() && wanted.find("," + name + ",") == std::string::npos) continue;
      std::cerr << "[bench] " << name << "\n";
      run();
    }
    if (!in_turn.empty()) {
      std::cerr << "[bench] rows 1 and 2, in turn\n";
      measure_in_turn(in_turn, r);
    }
    print_table(r);
    std::ofstream(argv[1]) << r.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "evpn-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
