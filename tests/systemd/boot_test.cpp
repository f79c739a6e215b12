// The units of deploy/systemd under a live systemd 252: a Debian bookworm container booted with
// systemd-nspawn, the project installed into it with `cmake --install` as an admin would, and
// the real ejabberd and evpn-ca serve of tests/support/deployment on the host's loopback, which
// the container shares. Each test case boots the container once; between boots the node's files
// are removed from the root, so every boot is a first boot.
//
// The shells of the container are not executable (chmod a-x) in every boot but the renewal's,
// whose --on-renew hook is a shell command by design: the units run without one.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/support/deployment.hpp"
#include "tests/systemd/container.hpp"

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>

using namespace evpn::test;
namespace fs = std::filesystem;
using std::chrono::seconds;

namespace {

constexpr const char* test_units[][2] = {
    // Holds network-online.target back while /etc/hold-online exists, until the test stops it.
    {"hold-online.service",
     "[Unit]\nDescription=Test: hold network-online.target back\nDefaultDependencies=no\n"
     "Before=network-online.target\nConditionPathExists=/etc/hold-online\n"
     "[Service]\nType=oneshot\nExecStart=/usr/bin/sleep infinity\nSuccessExitStatus=SIGTERM\n"
     "TimeoutStartSec=infinity\n[Install]\nWantedBy=network-online.target\n"},
    // EdgeVPN's unit, as far as ordering goes: it fails when its certificate or config is missing.
    {"evio.service",
     "[Unit]\nDescription=Test stand-in for EdgeVPN\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
     "ExecStart=/usr/bin/cat /var/lib/evpn-agent/current/node.crt /etc/opt/evio/config.json\n"
     "[Install]\nWantedBy=multi-user.target\n"},
    // Drop-ins that shorten what the test would otherwise wait for.
    {"evpn-agent-enroll.service.d/test.conf", "[Service]\nRestartSec=2s\n"},
    {"evpn-agent-check.timer.d/test.conf",
     "[Timer]\n# An empty value resets every trigger of the timer, not only this kind.\nOnBootSec=\nOnBootSec=1s\nOnUnitActiveSec=3s\nRandomizedDelaySec=0\nAccuracySec=1s\n"},
    {"evpn-agent-renew.timer.d/test.conf",
     "[Timer]\nOnCalendar=\nOnCalendar=*:*:0/10\nRandomizedDelaySec=5s\nAccuracySec=1s\n"},
    // The README's way of adding a hook; $$ is a literal $ for systemd.
    {"evpn-agent-renew.service.d/hook.conf",
     "[Service]\nExecStart=\nExecStart=/usr/bin/evpn-agent renew --state-dir /var/lib/evpn-agent "
     "--config /etc/evpn-agent/agent.json --on-renew \"echo $$EVPN_SERIAL > /var/lib/evpn-renew-hook\"\n"},
};

void write_text(const fs::path& file, const std::string& text, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::trunc) << text;
  fs::permissions(file, mode);
}

std::string trimmed(std::string s) { return s.substr(0, s.find_last_not_of('\n') + 1); }

void run_or_fail(const std::vector<std::string>& argv, const Environment& env = {}) {
  const RunResult r = run(argv, seconds(900), env);
  if (r.exit_code != 0)
    throw std::runtime_error(argv[0] + " exited with " + std::to_string(r.exit_code) + ":\n" + r.out + r.err);
}

// The host side (ejabberd and evpn-ca serve) and the container's root, made once for all boots.
struct World {
  Deployment deployment{"evpn-systemd"};
  fs::path root = deployment.dir() / "root";
  std::uint16_t container_ca_port = free_port();

  World() {
    deployment.add_group("fleet", "101000A");
    deployment.add_group("brief", "101000B", "1m");
    const RunResult cached = run({EVPN_SOURCE_DIR "/tests/systemd/rootfs.sh", EVPN_BUILD_DIR "/systemd-rootfs",
                                  EVPN_AGENT_BIN, EVPN_CA_BIN},
                                 seconds(900));
    if (cached.exit_code != 0) throw std::runtime_error("tests/systemd/rootfs.sh failed:\n" + cached.err);
    run_or_fail({"cp", "-a", "--reflink=auto", trimmed(cached.out), root.string()});
    // As deploy/systemd/README.md says: install with the prefix /usr, then enable the units.
    run_or_fail({"cmake", "--install", EVPN_BUILD_DIR, "--prefix", "/usr"}, {{"DESTDIR", root.string()}});
    for (const auto& [name, text] : test_units) write_text(root / "etc/systemd/system" / name, text);
    run_or_fail({"systemctl", "--root=" + root.string(), "enable", "evpn-agent-enroll.service",
                 "evpn-agent-renew.timer", "evpn-agent-check.timer", "hold-online.service"});
  }

  void shells_executable(bool on) const {
    for (const char* shell : {"usr/bin/dash", "usr/bin/bash"})
      fs::permissions(root / shell, fs::perms(on ? 0755 : 0644));
  }

  // Removes what a previous boot left on the node, and writes agent.json when given a token.
  void first_boot(const std::string& username, const std::string& token, bool hold_network) const {
    shells_executable(false);
    run_or_fail({"systemctl", "--root=" + root.string(), "enable", "evio.service"});
    for (const char* path : {"var/lib/evpn-agent", "etc/opt/evio", "etc/evpn-agent", "var/lib/evpn-renew-hook",
                             "etc/hold-online", "var/lib/prometheus"})
      fs::remove_all(root / path);
    if (hold_network) write_text(root / "etc/hold-online", "");
    if (token.empty()) return;
    fs::create_directories(root / "etc/evpn-agent");
    fs::permissions(root / "etc/evpn-agent", fs::perms(0700));
    write_text(root / "etc/evpn-agent/agent.json",
               nlohmann::json{{"ca_url", deployment.ca_url()},
                              {"fingerprint", deployment.fingerprint()},
                              {"token", token},
                              {"username", username},
                              {"state_dir", "/var/lib/evpn-agent"},
                              {"evio_config", "/etc/opt/evio/config.json"}}
                   .dump(),
               fs::perms(0600));
  }

  fs::path log(const std::string& boot) const { return deployment.dir() / ("nspawn-" + boot + ".log"); }
};

World& world() {
  static World w;
  return w;
}

long long number(const std::string& s) { return s.empty() ? 0 : std::stoll(s); }

bool state_is(const BootedContainer& c, const std::string& unit, const std::string& state) {
  return c.property(unit, "ActiveState") == state;
}

// "1.1" from "→ Overall exposure level for evpn-ca.service: 1.1 OK 🙂".
std::string exposure(const std::string& analyze_output) {
  const std::string marker = "Overall exposure level for evpn-ca.service: ";
  const auto at = analyze_output.find(marker);
  if (at == std::string::npos) return "(none in: " + analyze_output + ")";
  const auto start = at + marker.size();
  return analyze_output.substr(start, analyze_output.find(' ', start) - start);
}

}  // namespace

TEST_CASE("Without agent.json the enroll unit does not run and boot does not wait for the network") {
  World& w = world();
  w.first_boot("", "", true);
  // A node without EdgeVPN: evio.service is ordered after this unit, so on a node with EdgeVPN
  // it waits for the network through it (as EdgeVPN, which needs the network, would anyway).
  run({"systemctl", "--root=" + w.root.string(), "disable", "evio.service"});
  BootedContainer c(w.root, w.log("no-agent-json"));

  // network-online.target is held back: boot must get past multi-user.target regardless.
  CHECK(eventually([&] { return state_is(c, "multi-user.target", "active"); }, seconds(30)));
  INFO(c.exec({"systemctl", "list-jobs", "--no-pager"}).out);
  REQUIRE(state_is(c, "hold-online.service", "activating"));
  REQUIRE(c.exec({"systemctl", "kill", "hold-online.service"}).exit_code == 0);
  REQUIRE(eventually([&] { return state_is(c, "network-online.target", "active"); }, seconds(30)));
  REQUIRE(eventually([&] { return c.property("evpn-agent-enroll.service", "ConditionResult") == "no"; }, seconds(30)));
  CHECK(c.property("evpn-agent-enroll.service", "ExecMainStartTimestampMonotonic") == "0");
}

TEST_CASE("On a host not set up yet the enabled CA unit and the check are skipped, not failed") {
  // As the Debian packages leave a host: every unit enabled, no CA made, no agent.json.
  World& w = world();
  w.first_boot("", "", false);
  run_or_fail({"systemctl", "--root=" + w.root.string(), "enable", "evpn-ca.service"});
  // The stand-in for EdgeVPN fails without a certificate; this host has no EdgeVPN.
  run_or_fail({"systemctl", "--root=" + w.root.string(), "disable", "evio.service"});
  {
    BootedContainer c(w.root, w.log("not-set-up"));
    for (const std::string unit : {"evpn-ca.service", "evpn-agent-check.service"}) {
      REQUIRE(eventually([&] { return c.property(unit, "ConditionTimestampMonotonic") != "0"; }, seconds(30)));
      INFO(c.exec({"systemctl", "status", "--no-pager", unit}).out);
      CHECK(c.property(unit, "ConditionResult") == "no");
      CHECK(c.property(unit, "Result") == "success");
    }
    const std::string failed = c.exec({"systemctl", "--failed", "--no-legend", "--no-pager"}).out;
    INFO(failed);
    CHECK(failed.empty());
  }
  run_or_fail({"systemctl", "--root=" + w.root.string(), "disable", "evpn-ca.service"});
}

TEST_CASE("evpn-ca.service runs as its own user in its sandbox, serves, restarts and logs to the journal") {
  World& w = world();
  w.first_boot("", "", false);
  BootedContainer c(w.root, w.log("ca"));
  REQUIRE(eventually([&] { return c.exec({"id", "-u", "evpn-ca"}).exit_code == 0; }, seconds(30)));
  const std::string uid = trimmed(c.exec({"id", "-u", "evpn-ca"}).out);
  REQUIRE(fs::exists(w.root / "var/lib/evpn-ca"));

  // The README's commands: init as the service user, then enable --now.
  const std::string listen = "127.0.0.1:" + std::to_string(w.container_ca_port);
  const RunResult init = c.exec({"runuser", "-u", "evpn-ca", "--", "/usr/bin/evpn-ca", "init", "--dir",
                                 "/var/lib/evpn-ca", "--xmpp-domain", "evpn.test", "--directory", "none",
                                 "--listen", listen});
  INFO(init.err);
  REQUIRE(init.exit_code == 0);
  REQUIRE(c.exec({"systemctl", "enable", "--now", "evpn-ca.service"}).exit_code == 0);

  auto healthz = [&] {
    return run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                (w.root / "var/lib/evpn-ca/ca.crt").string(), "https://" + listen + "/healthz"})
        .out;
  };
  REQUIRE(eventually([&] { return healthz() == "200"; }, seconds(30)));

  const std::string pid = c.property("evpn-ca.service", "MainPID");
  const std::string status = c.exec({"cat", "/proc/" + pid + "/status"}).out;
  INFO(status);
  CHECK(status.find("\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n") != std::string::npos);
  CHECK(status.find("\nCapEff:\t0000000000000000\n") != std::string::npos);
  CHECK(status.find("\nNoNewPrivs:\t1\n") != std::string::npos);
  CHECK(status.find("\nSeccomp:\t2\n") != std::string::npos);

  REQUIRE(c.exec({"systemctl", "restart", "evpn-ca.service"}).exit_code == 0);
  REQUIRE(eventually([&] { return healthz() == "200"; }, seconds(30)));
  CHECK(c.property("evpn-ca.service", "MainPID") != pid);
  CHECK(c.property("evpn-ca.service", "NRestarts") == "0");
  CHECK(c.property("evpn-ca.service", "Result") == "success");
  const std::string journal = c.journal("evpn-ca.service");
  INFO(journal);
  CHECK(journal.find("/healthz") != std::string::npos);

  const RunResult live = c.exec({"systemd-analyze", "security", "--no-pager", "evpn-ca.service"});
  const RunResult offline = run({"systemd-analyze", "security", "--offline=true", "--no-pager",
                                 EVPN_SOURCE_DIR "/deploy/systemd/evpn-ca.service"});
  INFO(live.out + offline.out);
  CHECK(exposure(live.out) == exposure(offline.out));
  std::cout << "evpn-ca.service exposure: live " << exposure(live.out) << ", static " << exposure(offline.out)
            << "\n";
  c.exec({"systemctl", "disable", "--now", "evpn-ca.service"});
}

TEST_CASE("At first boot the node enrolls after the network is online and before EdgeVPN, and checks its health") {
  World& w = world();
  w.first_boot("node-b", w.deployment.token("fleet"), true);
  BootedContainer c(w.root, w.log("first-boot"));
  const std::string enroll = "evpn-agent-enroll.service";

  REQUIRE(eventually([&] { return state_is(c, "hold-online.service", "activating"); }, seconds(30)));
  CHECK(c.property(enroll, "ExecMainStartTimestampMonotonic") == "0");
  REQUIRE(c.exec({"systemctl", "kill", "hold-online.service"}).exit_code == 0);
  REQUIRE(eventually([&] { return !state_is(c, enroll, "inactive") && !state_is(c, enroll, "activating"); },
                     seconds(60)));
  INFO(c.journal(enroll));
  REQUIRE(c.property(enroll, "Result") == "success");
  CHECK(number(c.property(enroll, "ExecMainStartTimestampMonotonic")) >=
        number(c.property("network-online.target", "ActiveEnterTimestampMonotonic")));
  REQUIRE(eventually([&] { return !state_is(c, "evio.service", "inactive") && !state_is(c, "evio.service", "activating"); },
                     seconds(30)));
  CHECK(c.property("evio.service", "Result") == "success");
  CHECK(number(c.property("evio.service", "ExecMainStartTimestampMonotonic")) >=
        number(c.property(enroll, "ActiveEnterTimestampMonotonic")));

  CHECK(fs::status(w.root / "var/lib/evpn-agent/current/node.key").permissions() == fs::perms(0600));
  CHECK(fs::exists(w.root / "var/lib/evpn-agent/current/node.crt"));
  const auto evio = nlohmann::json::parse(read_file(w.root / "etc/opt/evio/config.json"));
  CHECK(evio["Signal"]["Overlays"]["101000A"]["AuthenticationMethod"] == "x509");
  CHECK(evio["Signal"]["Overlays"]["101000A"]["CertDirectory"] == "/var/lib/evpn-agent/current");

  // The check timer runs the check, which writes the textfile and succeeds...
  const std::string check = "evpn-agent-check.service";
  const fs::path metrics = w.root / "var/lib/prometheus/node-exporter/evpn_agent.prom";
  const bool checked = eventually([&] { return c.property(check, "ExecMainExitTimestampMonotonic") != "0"; }, seconds(60));
  INFO(c.exec({"systemctl", "list-timers", "--all", "--no-pager"}).out + c.exec({"systemctl", "status", "--no-pager", check}).out);
  REQUIRE(checked);
  {
    INFO(c.journal(check));
    CHECK(c.property(check, "Result") == "success");
    CHECK(read_file(metrics).find("evpn_agent_login_ok{username=\"node-b\"} 1") != std::string::npos);
  }
  // ...until the XMPP server stops: then the unit fails, in systemctl status and the journal.
  w.deployment.xmpp().stop();
  const bool failed = eventually([&] { return c.property(check, "ExecMainStatus") == "2"; }, seconds(60));
  const std::string status = c.exec({"systemctl", "status", "--no-pager", "-l", check}).out;
  const std::string journal = c.journal(check);
  w.deployment.xmpp().start();
  INFO(status + journal);
  REQUIRE(failed);
  CHECK(status.find("status=2") != std::string::npos);
  CHECK(journal.find("xmpp-login") != std::string::npos);
  CHECK(read_file(metrics).find("evpn_agent_login_ok{username=\"node-b\"} 0") != std::string::npos);
}

TEST_CASE("With the CA down at boot the node retries until it is up, then renews on the timer with the hook") {
  World& w = world();
  w.first_boot("node-c", w.deployment.token("brief"), false);
  w.deployment.stop_ca();
  w.shells_executable(true);  // the --on-renew hook is a shell command
  BootedContainer c(w.root, w.log("ca-down"));
  const std::string enroll = "evpn-agent-enroll.service";

  const bool retried = eventually([&] { return number(c.property(enroll, "NRestarts")) >= 1; }, seconds(60));
  w.deployment.start_ca();
  INFO(c.journal(enroll));
  REQUIRE(retried);
  CHECK(c.journal(enroll).find("status=4") != std::string::npos);
  REQUIRE(eventually([&] { return state_is(c, enroll, "active"); }, seconds(60)));
  const std::string enrolled = fs::read_symlink(w.root / "var/lib/evpn-agent/current").string();

  // The timer's next run is a 10 s slot plus up to 5 s of random delay. While the service runs,
  // the timer has no next run yet; a sample from when it waits is taken.
  std::string timers;
  std::uint64_t next = 0;
  REQUIRE(eventually(
      [&] {
        timers = c.exec({"systemctl", "list-timers", "--all", "--no-pager", "evpn-agent-renew.timer"}).out;
        const std::string elapse = c.exec({"busctl", "get-property", "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1/unit/evpn_2dagent_2drenew_2etimer",
                                           "org.freedesktop.systemd1.Timer", "NextElapseUSecRealtime"})
                                       .out;
        // While the renewal runs, systemd reports USEC_INFINITY (2^64 - 1): no next run yet.
        next = elapse.starts_with("t ") ? std::stoull(trimmed(elapse.substr(2))) : 0;
        return next > 0 && next != std::numeric_limits<std::uint64_t>::max() && !timers.starts_with("NEXT LEFT");
      },
      seconds(30)));
  std::cout << timers;
  INFO(timers);
  CHECK(timers.find("evpn-agent-renew.service") != std::string::npos);
  CHECK(next % 10'000'000 > 0);
  CHECK(next % 10'000'000 <= 5'000'000);

  // 1-minute certificates are due after 40 s.
  const fs::path hook = w.root / "var/lib/evpn-renew-hook";
  REQUIRE(eventually([&] { return fs::exists(hook); }, seconds(120)));
  INFO(c.journal("evpn-agent-renew.service"));
  const std::string renewed = fs::read_symlink(w.root / "var/lib/evpn-agent/current").string();
  CHECK(renewed != enrolled);
  CHECK("certs-" + trimmed(read_file(hook)) == renewed);
  CHECK(c.property("evpn-agent-renew.service", "Result") == "success");
}

TEST_CASE("A refused token stops the enroll unit without retries") {
  World& w = world();
  w.first_boot("node-d", "evpn1_0123456789abcdef_" + std::string(64, '0'), false);
  BootedContainer c(w.root, w.log("bad-token"));
  const std::string enroll = "evpn-agent-enroll.service";
  REQUIRE(eventually([&] { return state_is(c, enroll, "failed"); }, seconds(60)));
  INFO(c.journal(enroll));
  CHECK(c.property(enroll, "ExecMainStatus") == "3");
  CHECK(c.property(enroll, "NRestarts") == "0");
  CHECK(c.journal(enroll).find("status=3") != std::string::npos);
}

int main(int argc, char* argv[]) {
  // ctest's SKIP_RETURN_CODE: the machine cannot boot a container, and says why.
  std::string missing;
  if (::geteuid() != 0) missing = "root";
  for (const char* tool : {"systemd-nspawn", "nsenter", "debootstrap", "curl"})
    if (run({"sh", "-c", std::string("command -v ") + tool}).exit_code != 0) missing += std::string(" ") + tool;
  if (!missing.empty()) {
    std::cout << "SKIPPED: booting a container needs" << missing << " (deploy/install-deps.sh installs the tools)\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
