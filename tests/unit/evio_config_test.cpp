#include "agent/evio_config.hpp"

#include "common/fs/atomic_file.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

using evpn::Errc;
using evpn::agent::SignalEntry;
// Compares objects regardless of key order; the order test below uses ordered_json itself.
using Json = nlohmann::json;
namespace stdfs = std::filesystem;

namespace {

// evio master's template-config.json (reference §3) plus a second overlay and the keys that
// EdgeVPNio/tools adds.
constexpr const char* kMasterTemplate = R"({
  "Broker": { "Overlays": ["ovl0001"], "NodeId": "", "LogLevel": "DEBUG" },
  "Signal": {
    "Enabled": true,
    "Overlays": {
      "101000F": {
        "HostAddress": "provide.xmpp.server.addr", "AuthenticationMethod": "PASSWORD",
        "Port": "5222", "Username": "user@openfire.local", "Password": "passwd", "CacheExpiry": 45
      },
      "ovl0001": {
        "HostAddress": "other.example.org", "AuthenticationMethod": "PASSWORD",
        "Port": "5222", "Username": "ovl0001_node9@trial.edgevpn.io", "Password": "secret"
      }
    }
  },
  "LinkManager": {
    "Stun": ["stun.l.google.com:19302", "stun1.l.google.com:19302"],
    "Turn": [{ "Address": "provide.turn.server.addr:3478", "User": "user", "Password": "passwd" }],
    "Overlays": { "ovl0001": { "IgnoredNetInterfaces": ["flannel.1", "cni0", "docker0"] } }
  },
  "BridgeController": {
    "BoundedFlood": { "Overlays": { "ovl0001": {} } },
    "Overlays": { "ovl0001": { "NetDevice": { "AppBridge": { "IP4": "10.10.10.1", "PrefixLen": 24, "MTU": 1350 } } } }
  },
  "Topology": { "Overlays": { "ovl0001": { "LocationId": 0, "EncryptionRequired": false } } },
  "UsageReport": { "Enabled": true, "TimerInterval": 3600 }
})";

// evio v21.9.0's controller/template-config.json layout (reference §3).
constexpr const char* kV21Template = R"({
  "CFx": { "Overlays": ["ovl0001"] },
  "Logger": { "LogLevel": "DEBUG", "Directory": "/var/log/evio/" },
  "Signal": { "Overlays": { "ovl0001": {
    "HostAddress": "xmpp.example.org", "Port": "5222", "Username": "u@example.org",
    "Password": "p", "AuthenticationMethod": "PASSWORD" } } },
  "Topology": { "Overlays": { "ovl0001": { "MaxSuccessors": 2, "MaxOnDemandEdges": 3, "Role": "Switch" } } },
  "LinkManager": { "Stun": ["stun.l.google.com:19302"], "Overlays": { "ovl0001": { "Type": "TUNNEL", "TapNamePrefix": "tnl" } } },
  "UsageReport": { "TimerInterval": 3600, "WebService": "https://example.org/report" }
})";

const SignalEntry kEntry{"xmpp.example.org", "5222", "/var/lib/evpn-agent/current", "node.crt",
                         "node.key"};

Json merged(std::string_view existing, const std::string& overlay = "101000F") {
  auto text = evpn::agent::merge_overlay(existing, overlay, kEntry);
  REQUIRE(text.has_value());
  REQUIRE(text->back() == '\n');
  return Json::parse(*text);
}

const Json kExpectedEntry = Json::parse(R"({
  "HostAddress": "xmpp.example.org", "Port": "5222", "AuthenticationMethod": "x509",
  "CertDirectory": "/var/lib/evpn-agent/current", "CertFile": "node.crt", "KeyFile": "node.key"
})");

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  stdfs::path path = stdfs::temp_directory_path() /
                     ("evio-config-test-" + std::to_string(std::random_device{}()));
  TempDir() { stdfs::create_directories(path); }
  ~TempDir() { stdfs::remove_all(path); }
};

std::string read(const stdfs::path& file) { return evpn::fs::read_file(file).value(); }

void write(const stdfs::path& file, std::string_view text) {
  REQUIRE(evpn::fs::write_file_atomic(file, text, stdfs::perms::owner_read | stdfs::perms::owner_write)
              .has_value());
}

}  // namespace

TEST_CASE("merging into a Broker-generation config adds the overlay and its x509 Signal entry only") {
  const auto before = Json::parse(kMasterTemplate);
  const auto after = merged(kMasterTemplate);

  CHECK(after["Broker"]["Overlays"] == Json::parse(R"(["ovl0001", "101000F"])"));
  CHECK(after["Broker"]["NodeId"] == "");
  CHECK(after["Broker"]["LogLevel"] == "DEBUG");

  auto entry = kExpectedEntry;
  entry["CacheExpiry"] = 45;
  const auto& written = after["Signal"]["Overlays"]["101000F"];
  CHECK(written == entry);
  CHECK(written["Port"].is_string());
  CHECK_FALSE(written.contains("Username"));
  CHECK_FALSE(written.contains("Password"));

  CHECK(after["Signal"]["Enabled"] == true);
  CHECK(after["Signal"]["Overlays"]["ovl0001"] == before["Signal"]["Overlays"]["ovl0001"]);
  for (const char* section : {"LinkManager", "BridgeController", "Topology", "UsageReport"})
    CHECK(after[section] == before[section]);
  CHECK(after.size() == before.size());
}

TEST_CASE("merging keeps the operator's key order") {
  std::vector<std::string> keys;
  auto text = evpn::agent::merge_overlay(kMasterTemplate, "101000F", kEntry);
  REQUIRE(text.has_value());
  const auto doc = nlohmann::ordered_json::parse(*text);
  for (const auto& [key, value] : doc.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"Broker", "Signal", "LinkManager", "BridgeController",
                                         "Topology", "UsageReport"});
}

TEST_CASE("merging the same overlay twice gives the same text and lists the overlay once") {
  auto first = evpn::agent::merge_overlay(kMasterTemplate, "101000F", kEntry);
  REQUIRE(first.has_value());
  auto second = evpn::agent::merge_overlay(*first, "101000F", kEntry);
  REQUIRE(second.has_value());
  CHECK(*second == *first);
  CHECK(Json::parse(*second)["Broker"]["Overlays"] == Json::parse(R"(["ovl0001", "101000F"])"));
}

TEST_CASE("merging an overlay already listed replaces its password entry in place") {
  const auto before = Json::parse(kMasterTemplate);
  const auto after = merged(kMasterTemplate, "ovl0001");
  CHECK(after["Broker"]["Overlays"] == Json::parse(R"(["ovl0001"])"));
  CHECK(after["Signal"]["Overlays"]["ovl0001"] == kExpectedEntry);
  CHECK(after["Signal"]["Overlays"]["101000F"] == before["Signal"]["Overlays"]["101000F"]);
  // Sections that belong to the template are not touched, even for this overlay.
  CHECK(after["LinkManager"] == before["LinkManager"]);
}

TEST_CASE("merging into a CFx-generation config uses CFx.Overlays and adds no Broker") {
  const auto before = Json::parse(kV21Template);
  const auto after = merged(kV21Template, "ovl0002");
  CHECK(after["CFx"]["Overlays"] == Json::parse(R"(["ovl0001", "ovl0002"])"));
  CHECK_FALSE(after.contains("Broker"));
  CHECK(after["Signal"]["Overlays"]["ovl0002"] == kExpectedEntry);
  CHECK(after["Signal"]["Overlays"]["ovl0001"] == before["Signal"]["Overlays"]["ovl0001"]);
  for (const char* section : {"Logger", "Topology", "LinkManager", "UsageReport"})
    CHECK(after[section] == before[section]);
}

TEST_CASE("merging into no file makes a minimal Broker-generation config") {
  const auto after = merged("");
  CHECK(after.size() == 2);
  CHECK(after["Broker"] == Json::parse(R"({"Overlays": ["101000F"]})"));
  CHECK(after["Signal"]["Overlays"].size() == 1);
  CHECK(after["Signal"]["Overlays"]["101000F"] == kExpectedEntry);
}

TEST_CASE("merging into a config with neither Broker nor CFx adds Broker") {
  const auto after = merged(R"({"UsageReport": {"Enabled": false}})");
  CHECK(after["Broker"]["Overlays"] == Json::parse(R"(["101000F"])"));
  CHECK(after["Signal"]["Overlays"]["101000F"] == kExpectedEntry);
  CHECK(after["UsageReport"]["Enabled"] == false);
}

TEST_CASE("merging refuses text that is not a JSON object of a config's shape") {
  const std::string truncated = std::string(kMasterTemplate).substr(0, 200);
  const auto bad = GENERATE_COPY(values<std::string>({
      truncated,
      R"({"Broker": {"Overlays": ["a",]}})",
      R"([{"Broker": {"Overlays": []}}])",
      R"({"Broker": {"Overlays": "ovl0001"}})",
      R"({"Broker": {"Overlays": [1]}})",
      R"({"Broker": []})",
      R"({"Broker": {"Overlays": []}, "Signal": {"Overlays": []}})",
      R"({"Broker": {"Overlays": []}, "Signal": {"Overlays": {"101000F": "x"}}})",
  }));
  auto r = evpn::agent::merge_overlay(bad, "101000F", kEntry);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_request);
  CHECK_THAT(r.error().detail, Catch::Contains("the file was left unchanged"));
}

TEST_CASE("update_config_file leaves a file it cannot merge byte for byte unchanged") {
  TempDir tmp;
  const auto file = tmp.path / "config.json";
  const auto bad = GENERATE(as<std::string>{}, R"({"Broker": {"Overlays": ["a",]}})",
                            R"({"Broker": {"Overlays": "ovl0001"}})", "[1, 2]", "{\"Broker\":");
  write(file, bad);
  auto r = evpn::agent::update_config_file(file, "101000F", kEntry);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_request);
  CHECK_THAT(r.error().detail, Catch::Contains(file.string()));
  CHECK(read(file) == bad);
  CHECK(std::distance(stdfs::directory_iterator(tmp.path), stdfs::directory_iterator()) == 1);
}

TEST_CASE("update_config_file keeps an existing file's mode, as other overlays' passwords are in it") {
  TempDir tmp;
  const auto file = tmp.path / "config.json";
  write(file, kMasterTemplate);
  const auto mode = stdfs::perms::owner_read | stdfs::perms::owner_write | stdfs::perms::group_read;
  stdfs::permissions(file, mode);
  REQUIRE(evpn::agent::update_config_file(file, "101000F", kEntry).has_value());
  CHECK(Json::parse(read(file)) == merged(kMasterTemplate));
  CHECK((stdfs::status(file).permissions() & stdfs::perms::mask) == mode);
}

TEST_CASE("update_config_file keeps an existing file's owner and group") {
  if (::geteuid() != 0) {
    WARN("not run: giving a file to another owner needs root");
    return;
  }
  TempDir tmp;
  const auto file = tmp.path / "config.json";
  write(file, kMasterTemplate);
  REQUIRE(::chown(file.c_str(), 4321, 8765) == 0);
  REQUIRE(evpn::agent::update_config_file(file, "101000F", kEntry).has_value());
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK(st.st_uid == 4321u);
  CHECK(st.st_gid == 8765u);
  CHECK(Json::parse(read(file)) == merged(kMasterTemplate));
}

TEST_CASE("update_config_file follows a symlink and replaces its target, leaving the link in place") {
  TempDir tmp;
  stdfs::create_directories(tmp.path / "etc" / "evio");
  stdfs::create_directories(tmp.path / "shared");
  const auto target = tmp.path / "shared" / "evio.json";
  const auto link = tmp.path / "etc" / "evio" / "config.json";
  write(target, kMasterTemplate);
  stdfs::permissions(target, stdfs::perms::owner_read | stdfs::perms::owner_write | stdfs::perms::group_read);
  stdfs::create_symlink("../../shared/evio.json", link);
  REQUIRE(evpn::agent::update_config_file(link, "101000F", kEntry).has_value());
  REQUIRE(stdfs::is_symlink(link));
  CHECK(stdfs::read_symlink(link) == "../../shared/evio.json");
  CHECK(Json::parse(read(target)) == merged(kMasterTemplate));
  CHECK((stdfs::status(target).permissions() & stdfs::perms::mask) ==
        (stdfs::perms::owner_read | stdfs::perms::owner_write | stdfs::perms::group_read));
  // Nothing was left beside the link or the target.
  CHECK(std::distance(stdfs::directory_iterator(link.parent_path()), stdfs::directory_iterator()) == 1);
  CHECK(std::distance(stdfs::directory_iterator(target.parent_path()), stdfs::directory_iterator()) == 1);
}

TEST_CASE("update_config_file creates a missing file and its parent directory") {
  TempDir tmp;
  const auto file = tmp.path / "etc" / "evio" / "config.json";
  REQUIRE(evpn::agent::update_config_file(file, "101000F", kEntry).has_value());
  CHECK(Json::parse(read(file)) == merged(""));
  // A new file may come to hold other overlays' passwords: private until the operator says otherwise.
  CHECK((stdfs::status(file).permissions() & stdfs::perms::mask) ==
        (stdfs::perms::owner_read | stdfs::perms::owner_write));
  CHECK((stdfs::status(file.parent_path()).permissions() & stdfs::perms::all) ==
        (stdfs::perms::owner_all | stdfs::perms::group_read | stdfs::perms::group_exec |
         stdfs::perms::others_read | stdfs::perms::others_exec));
}

TEST_CASE("update_config_file refuses a file larger than 1 MiB") {
  TempDir tmp;
  const auto file = tmp.path / "config.json";
  const std::string big = "{\"Pad\": \"" + std::string(1 << 20, 'x') + "\"}";
  write(file, big);
  auto r = evpn::agent::update_config_file(file, "101000F", kEntry);
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().detail, Catch::Contains("larger than"));
  CHECK(evpn::fs::read_file(file, 2 << 20).value() == big);
}

TEST_CASE("check_config_file accepts a missing or mergeable file and refuses a broken one") {
  TempDir tmp;
  const auto file = tmp.path / "config.json";
  CHECK(evpn::agent::check_config_file(file).has_value());
  CHECK_FALSE(stdfs::exists(file));

  write(file, kV21Template);
  CHECK(evpn::agent::check_config_file(file).has_value());
  CHECK(read(file) == kV21Template);

  write(file, R"({"CFx": {"Overlays": {}}})");
  auto r = evpn::agent::check_config_file(file);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_request);
  CHECK_THAT(r.error().detail, Catch::Contains("CFx.Overlays is not a list"));
  CHECK(read(file) == R"({"CFx": {"Overlays": {}}})");
}
