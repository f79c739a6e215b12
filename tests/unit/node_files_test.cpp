#include "agent/node_files.hpp"
#include "agent/pending_key.hpp"

#include "common/fs/atomic_file.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using evpn::Errc;
using evpn::agent::NodeFiles;
using evpn::agent::NodeState;
namespace stdfs = std::filesystem;
using stdfs::perms;

namespace {

// The files module does not parse PEM, so PEM-looking text is enough here.
std::string pem(const std::string& label, const std::string& body) {
  return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----\n";
}

// A fresh, not yet existing state directory under a temp dir removed at the end of the test.
struct TempState {
  stdfs::path root = stdfs::temp_directory_path() /
                     ("node-files-test-" + std::to_string(std::random_device{}()));
  stdfs::path dir = root / "state";
  NodeFiles files{dir};
  ~TempState() { stdfs::remove_all(root); }
};

NodeState state_for(const std::string& serial) {
  NodeState s;
  s.ca_url = "https://ca.example.org:8443";
  s.fingerprint = std::string(64, 'a');
  s.username = "node1";
  s.jid = "node1@example.org";
  s.group = "lab";
  s.overlay = "101000F";
  s.xmpp_host = "xmpp.example.org";
  s.xmpp_port = 15222;
  s.xmpp_domain = "example.org";
  s.evio_config = "/etc/opt/evio/config.json";
  s.key_type = "ec-p256";
  s.serial = serial;
  s.not_after = "2030-01-31T00:00:00Z";
  s.renew_after = "2030-01-21T00:00:00Z";
  return s;
}

auto fields(const NodeState& s) {
  return std::tie(s.ca_url, s.fingerprint, s.username, s.jid, s.group, s.overlay, s.xmpp_host,
                  s.xmpp_port, s.xmpp_domain, s.evio_config, s.key_type, s.serial, s.not_after,
                  s.renew_after);
}

std::string read(const stdfs::path& file) { return evpn::fs::read_file(file).value(); }

perms mode(const stdfs::path& p) { return stdfs::symlink_status(p).permissions() & perms::all; }

// Stages and commits a pair whose texts name `serial`.
void enroll(NodeFiles& files, const std::string& serial) {
  auto staged = files.stage(pem("PRIVATE KEY", "key " + serial), pem("CERTIFICATE", "cert " + serial),
                            pem("CERTIFICATE", "root"), serial);
  REQUIRE(staged.has_value());
  REQUIRE(files.commit(*staged, state_for(serial)).has_value());
}

std::vector<std::string> entries(const stdfs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : stdfs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every entry under `dir`: file content and mode, or symlink target.
std::map<std::string, std::string> snapshot(const stdfs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
    const auto name = e.path().lexically_relative(dir).string();
    if (e.is_symlink())
      out[name] = "-> " + stdfs::read_symlink(e.path()).string();
    else if (e.is_regular_file())
      out[name] = std::to_string(static_cast<int>(mode(e.path()))) + " " + read(e.path());
    else
      out[name] = "dir " + std::to_string(static_cast<int>(mode(e.path())));
  }
  return out;
}

}  // namespace

TEST_CASE("stage creates a private state directory and writes the key 0600 in a private staging directory") {
  TempState t;
  auto staged = t.files.stage(pem("PRIVATE KEY", "k"), pem("CERTIFICATE", "c"),
                              pem("CERTIFICATE", "r"), "0a1B");
  REQUIRE(staged.has_value());
  CHECK(mode(t.dir) == perms::owner_all);
  CHECK(staged->dir.parent_path() == t.dir);
  CHECK(staged->dir.filename().string().starts_with(".staging-"));
  CHECK(mode(staged->dir) == perms::owner_all);
  CHECK(staged->serial == "0a1B");

  CHECK(read(staged->key_file) == pem("PRIVATE KEY", "k"));
  CHECK(mode(staged->key_file) == (perms::owner_read | perms::owner_write));
  const auto public_mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
  CHECK(read(staged->cert_file) == pem("CERTIFICATE", "c"));
  CHECK(mode(staged->cert_file) == public_mode);
  CHECK(read(staged->root_file) == pem("CERTIFICATE", "r"));
  CHECK(mode(staged->root_file) == public_mode);

  CHECK_FALSE(stdfs::exists(t.files.current_dir()));
  CHECK_FALSE(stdfs::exists(t.files.state_file()));
}

TEST_CASE("stage refuses a serial that is not hexadecimal and writes nothing") {
  TempState t;
  const auto serial = GENERATE(as<std::string>{}, "", "../x", "ab/cd", "0a 1b", "..");
  auto staged = t.files.stage("k", "c", "r", serial);
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().code == Errc::invalid_request);
  CHECK_FALSE(stdfs::exists(t.dir));
}

TEST_CASE("pairs left by interrupted runs stay pending until a commit makes them obsolete") {
  TempState t;
  auto first = t.files.stage("k", "c", "r", "01");
  REQUIRE(first.has_value());
  auto second = t.files.stage("k", "c", "r", "02");
  REQUIRE(second.has_value());
  CHECK(t.files.pending().size() == 2);

  CHECK(t.files.pending().front().root_file.parent_path() == t.files.pending().front().dir);

  // Whatever the CA issued before the pair committed now is superseded by it.
  REQUIRE(t.files.commit(*second, state_for("02")).has_value());
  CHECK(t.files.pending().empty());
  CHECK_FALSE(stdfs::exists(first->dir));
}

TEST_CASE("commit finishes a commit that was interrupted after the pair was renamed") {
  TempState t;
  auto old_pair = t.files.stage("k1", "c1", "r", "01");
  REQUIRE(old_pair.has_value());
  REQUIRE(t.files.commit(*old_pair, state_for("01")).has_value());
  // As a run killed right after writing state.json, renaming the staging directory and moving
  // root.crt leaves it.
  auto staged = t.files.stage("k2", "c2", "r2", "02");
  REQUIRE(staged.has_value());
  std::string state = read(t.files.state_file());
  const auto at = state.find("\"serial\": \"01\"");
  REQUIRE(at != std::string::npos);
  state.replace(at, 14, "\"serial\": \"02\"");
  REQUIRE(evpn::fs::write_file_atomic(t.files.state_file(), state, perms::owner_read | perms::owner_write).has_value());
  stdfs::rename(staged->dir, t.dir / "certs-02");
  stdfs::rename(t.dir / "certs-02" / "root.crt", t.files.root_file());

  auto pending = t.files.pending();
  REQUIRE(pending.size() == 1);
  CHECK(pending.front().dir == t.dir / "certs-02");
  CHECK(pending.front().root_file == t.files.root_file());
  pending.front().serial = "02";
  REQUIRE(t.files.commit(pending.front(), state_for("02")).has_value());
  CHECK(stdfs::read_symlink(t.files.current_dir()) == "certs-02");
  CHECK(read(t.files.key_file()) == "k2");
  CHECK(read(t.files.root_file()) == "r2");
  // certs-01, the previous pair, is kept on purpose but is never pending.
  CHECK(stdfs::exists(t.dir / "certs-01"));
  CHECK(t.files.pending().empty());
}

TEST_CASE("commit makes current point at the new pair and writes root.crt and state.json") {
  TempState t;
  const auto key = pem("PRIVATE KEY", "k"), cert = pem("CERTIFICATE", "c"), root = pem("CERTIFICATE", "r");
  auto staged = t.files.stage(key, cert, root, "7f00");
  REQUIRE(staged.has_value());
  REQUIRE(t.files.commit(*staged, state_for("7f00")).has_value());

  CHECK(stdfs::is_symlink(t.files.current_dir()));
  CHECK(stdfs::read_symlink(t.files.current_dir()) == "certs-7f00");
  CHECK(read(t.files.key_file()) == key);
  CHECK(mode(t.dir / "certs-7f00" / "node.key") == (perms::owner_read | perms::owner_write));
  CHECK(read(t.files.cert_file()) == cert);
  CHECK(read(t.files.root_file()) == root);
  CHECK(mode(t.files.state_file()) == (perms::owner_read | perms::owner_write));
  CHECK(entries(t.dir) == std::vector<std::string>{"certs-7f00", "current", "root.crt", "state.json"});
  CHECK(entries(t.dir / "certs-7f00") == std::vector<std::string>{"node.crt", "node.key"});
}

TEST_CASE("load_state returns the state that commit wrote") {
  TempState t;
  enroll(t.files, "01ab");
  auto loaded = t.files.load_state();
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->has_value());
  CHECK(fields(**loaded) == fields(state_for("01ab")));
}

TEST_CASE("load_state returns nothing when the node has not enrolled") {
  TempState t;
  auto loaded = t.files.load_state();
  REQUIRE(loaded.has_value());
  CHECK_FALSE(loaded->has_value());
}

TEST_CASE("load_state refuses a malformed state.json and names the file") {
  TempState t;
  enroll(t.files, "01");
  const auto text = GENERATE(as<std::string>{}, "{\"ca_url\": ", "[]", R"({"ca_url": "x"})",
                             R"({"ca_url": 1, "fingerprint": "f"})");
  REQUIRE(evpn::fs::write_file_atomic(t.files.state_file(), text, perms::owner_read | perms::owner_write)
              .has_value());
  auto loaded = t.files.load_state();
  REQUIRE_FALSE(loaded.has_value());
  CHECK(loaded.error().code == Errc::invalid_request);
  CHECK_THAT(loaded.error().detail, Catch::Contains(t.files.state_file().string()));
}

TEST_CASE("a new commit keeps the previous pair and removes older ones") {
  TempState t;
  enroll(t.files, "01");
  enroll(t.files, "02");
  CHECK(entries(t.dir) ==
        std::vector<std::string>{"certs-01", "certs-02", "current", "root.crt", "state.json"});
  enroll(t.files, "03");
  CHECK(entries(t.dir) ==
        std::vector<std::string>{"certs-02", "certs-03", "current", "root.crt", "state.json"});
  CHECK(stdfs::read_symlink(t.files.current_dir()) == "certs-03");
  CHECK(read(t.files.key_file()) == pem("PRIVATE KEY", "key 03"));
  CHECK(read(t.files.cert_file()) == pem("CERTIFICATE", "cert 03"));
  CHECK(t.files.load_state().value()->serial == "03");
}

TEST_CASE("committing the same serial again replaces its pair and keeps no older one") {
  TempState t;
  enroll(t.files, "01");
  enroll(t.files, "02");
  auto staged = t.files.stage("new key", "new cert", "root", "02");
  REQUIRE(staged.has_value());
  REQUIRE(t.files.commit(*staged, state_for("02")).has_value());
  CHECK(stdfs::read_symlink(t.files.current_dir()) == "certs-02");
  CHECK(read(t.files.key_file()) == "new key");
  CHECK(read(t.files.cert_file()) == "new cert");
  CHECK(entries(t.dir) == std::vector<std::string>{"certs-02", "current", "root.crt", "state.json"});
}

TEST_CASE("discard removes the staging directory") {
  TempState t;
  auto staged = t.files.stage("k", "c", "r", "01");
  REQUIRE(staged.has_value());
  t.files.discard(*staged);
  CHECK_FALSE(stdfs::exists(staged->dir));
  CHECK(entries(t.dir).empty());
}

TEST_CASE("a pair staged and discarded leaves the committed state byte for byte unchanged") {
  TempState t;
  enroll(t.files, "01");
  enroll(t.files, "02");
  const auto before = snapshot(t.dir);
  REQUIRE(before.size() == 9);

  auto staged = t.files.stage("other key", "other cert", "other root", "03");
  REQUIRE(staged.has_value());
  t.files.discard(*staged);

  CHECK(snapshot(t.dir) == before);
}

TEST_CASE("a pending key is on disk 0600, in a private state directory, before it is returned, and comes back until dropped") {
  TempState t;
  const evpn::agent::PendingKey pending(t.dir / ".renew-key");
  auto key = pending.get(evpn::crypto::KeyType::ec_p256);
  REQUIRE(key.has_value());
  REQUIRE(stdfs::exists(pending.file()));
  CHECK((stdfs::status(pending.file()).permissions() & perms::all) == (perms::owner_read | perms::owner_write));
  CHECK((stdfs::status(t.dir).permissions() & perms::all) == perms::owner_all);
  CHECK(evpn::fs::read_file(pending.file()).value() == key->to_pem());

  auto again = pending.get(evpn::crypto::KeyType::ec_p256);
  REQUIRE(again.has_value());
  CHECK(again->to_pem() == key->to_pem());

  // Another key type asked for: the kept key is not of use and is replaced.
  auto rsa = pending.get(evpn::crypto::KeyType::rsa_2048);
  REQUIRE(rsa.has_value());
  CHECK(evpn::crypto::key_type_of(rsa->get()) == evpn::crypto::KeyType::rsa_2048);
  CHECK(evpn::fs::read_file(pending.file()).value() == rsa->to_pem());

  pending.drop();
  CHECK_FALSE(stdfs::exists(pending.file()));
}

TEST_CASE("a pending key survives a refusal that says try again later and goes with a final one") {
  TempState t;
  const evpn::agent::PendingKey pending(t.dir / ".enroll-key");
  REQUIRE(pending.get(evpn::crypto::KeyType::ec_p256).has_value());
  for (auto code : {Errc::unavailable, Errc::internal}) {
    pending.refused(evpn::fail(code, "the CA is busy"));
    CHECK(stdfs::exists(pending.file()));
  }
  for (auto code : {Errc::unauthorized, Errc::forbidden, Errc::conflict, Errc::invalid_request}) {
    REQUIRE(pending.get(evpn::crypto::KeyType::ec_p256).has_value());
    pending.refused(evpn::fail(code, "refused"));
    CHECK_FALSE(stdfs::exists(pending.file()));
  }
}
