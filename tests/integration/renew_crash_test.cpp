// The agent killed with SIGKILL at every named step of a renewal and of an enrollment (an
// evpn-agent built with -DEVPN_TEST_HOOKS=ON stops itself at the step named by
// EVPN_AGENT_STOP_AT): afterwards the node's key and certificate still match, the EdgeVPN config
// is as before or points at a matching pair, and running the command again recovers.

#include "tests/integration/renew_world.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

using namespace evpn::test::renewal;
using evpn::test::read_file;
using evpn::test::RunResult;

namespace {

// The stop points of install(), activate() and NodeFiles::commit(), in the order a run reaches
// them. "answered" is a lost answer: the CA has committed, the agent has written nothing. The pair
// is committed before the EdgeVPN config is written; a renewal finds the config already naming
// <state>/current and leaves its bytes alone.
const std::vector<std::string> steps = {"answered",     "staged",  "logged-in", "state-written", "pair-renamed",
                                        "root-moved", "link-created", "swapped", "committed",     "config-written"};

constexpr int killed_exit_code = 128 + SIGKILL;

// An EdgeVPN 21 config whose bytes an interrupted enrollment must either keep or replace whole.
const std::string cfx_config = R"({ "CFx": { "Overlays": ["A0B1C2D"] }, "Logger": { "LogLevel": "INFO" } }
)";

// What a kill at one step left behind, and whether running the command again recovered.
struct Row {
  std::string step;
  bool killed = false;
  std::string config;                // "unchanged" or "new" (points at <state>/current), "other" otherwise
  std::string current;               // which pair `current` names: "old", "new", "none"
  std::string state;                 // which serial state.json names: "old", "new", "none"
  std::optional<bool> pair_matches;  // nullopt: there is no `current` pair
  std::optional<bool> login_ok;      // nullopt: the config names no pair to log in with
  int recovery_exit = -1;            // of running the same command again
  bool recovered = false;            // it exited 0 and left a matching pair that logs in
  std::string leftovers;             // entries of the state directory besides the expected ones, after recovery
};

// Prints the rows as a table on stdout, for the record of which state each kill left behind.
void print_table(const std::string& title, const std::vector<Row>& rows) {
  const auto yes_no = [](std::optional<bool> b) -> std::string { return !b ? "-" : *b ? "yes" : "NO"; };
  std::vector<std::vector<std::string>> lines = {{"step", "killed", "config", "current", "state.json", "pair matches",
                                                  "login ok", "recovered", "exit", "leftovers after recovery"}};
  for (const auto& r : rows)
    lines.push_back({r.step, yes_no(r.killed), r.config, r.current, r.state, yes_no(r.pair_matches), yes_no(r.login_ok),
                     yes_no(r.recovered), std::to_string(r.recovery_exit), r.leftovers.empty() ? "-" : r.leftovers});
  std::vector<std::size_t> widths(lines.front().size(), 0);
  for (const auto& line : lines)
    for (std::size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size() + 2);
  std::ostringstream out;
  out << "\n" << title << "\n" << std::left;
  for (const auto& line : lines) {
    for (std::size_t i = 0; i + 1 < line.size(); ++i) out << std::setw(static_cast<int>(widths[i])) << line[i];
    out << line.back() << "\n";
  }
  std::cout << out.str() << std::flush;
}

bool login_ok(const Node& node) {
  const auto report = world().login(node, lab_overlay);
  INFO((report.error ? report.error->detail : std::string()));
  CHECK(report.ok());
  return report.ok();
}

// "old" or "new" for the pair `current` names (by serial), "none" when there is no usable one.
std::string which_pair(const Node& node, const std::string& old_serial) {
  const auto cert = current_certificate(node);
  if (!cert) return "none";
  return cert->serial_hex() == old_serial ? "old" : "new";
}

// "old" or "new" for the serial state.json names, "none" when it does not load.
std::string which_state(const Node& node, const std::string& old_serial) {
  auto state = evpn::agent::NodeFiles(node.state()).load_state();
  if (!state || !*state) return "none";
  return (*state)->serial == old_serial ? "old" : "new";
}

// Entries a recovered state directory should not hold: anything but state.json, root.crt,
// `current` and the pair directories.
std::string leftovers(const Node& node) {
  std::string found;
  for (const auto& e : fs::directory_iterator(node.state())) {
    const std::string name = e.path().filename().string();
    if (name != "state.json" && name != "root.crt" && name != "current" && !name.starts_with("certs-"))
      found += (found.empty() ? "" : " ") + name;
  }
  return found;
}

evpn::test::Environment stop_at(const std::string& step) { return {{"EVPN_AGENT_STOP_AT", step}}; }

Row kill_renewal_at(const std::string& step) {
  INFO("renewal killed at " << step);
  auto& w = world();
  const Node node = w.enrolled("renew-" + step, "lab");
  const std::string config = read_file(node.config());
  const auto old_serial = current_certificate(node)->serial_hex();
  Row row;
  row.step = step;

  const RunResult r = w.renew(node.state(), {"--force"}, stop_at(step));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  row.killed = r.exit_code == killed_exit_code;
  CHECK(row.killed);
  // The swap of `current` is the commit point: before it the old pair is in use, from it the new.
  row.current = which_pair(node, old_serial);
  row.state = which_state(node, old_serial);
  CHECK(row.current == (step == "swapped" || step == "committed" || step == "config-written" ? "new" : "old"));
  row.pair_matches = pair_matches(node);
  CHECK(*row.pair_matches);
  CHECK(chains_to_root(node));
  CHECK(state_loads(node));
  row.config = read_file(node.config()) == config ? "unchanged" : "other";
  CHECK(row.config == "unchanged");
  CHECK(config_points_at_current(node, lab_overlay));
  row.login_ok = login_ok(node);
  // Up to the swap the renewal's new key waits (0600) for the next run, which must send it again.
  const fs::path pending_key = node.state() / ".renew-key";
  const std::string key_pem = read_file(pending_key);
  if (row.current == "old") {
    CHECK_FALSE(key_pem.empty());
    CHECK((fs::status(pending_key).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  }

  // Not forced: a pending renewal is finished whether or not it is due.
  const RunResult again = w.renew(node.state());
  INFO("recovery stdout: " << again.out << "\nstderr: " << again.err);
  row.recovery_exit = again.exit_code;
  row.recovered = again.exit_code == 0 && pair_matches(node) && which_pair(node, old_serial) == "new" &&
                  read_file(node.config()) == config && login_ok(node);
  CHECK(row.recovered);
  if (row.current == "old") CHECK(read_file(key_file(node)) == key_pem);
  row.leftovers = leftovers(node);
  if (row.recovered) CHECK_THAT(row.leftovers, !Catch::Matchers::Contains(".staging-"));
  return row;
}

Row kill_enrollment_at(const std::string& step) {
  INFO("enrollment killed at " << step);
  auto& w = world();
  const Node node = w.deployment.node("enroll-" + step);
  write(node.config(), cfx_config);
  Row row;
  row.step = step;

  const RunResult r =
      evpn::test::run(w.deployment.enroll_command(node, w.tokens.at("lab")), std::chrono::seconds(120), stop_at(step));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  row.killed = r.exit_code == killed_exit_code;
  CHECK(row.killed);
  const bool unchanged = read_file(node.config()) == cfx_config;
  const bool points = config_points_at_current(node, lab_overlay);
  row.config = unchanged ? "unchanged" : points ? "new" : "other";
  row.current = which_pair(node, "");
  row.state = which_state(node, "");
  if (fs::exists(node.current())) row.pair_matches = pair_matches(node);
  // The config is either as it was or fully written, and when it names `current`, that is a
  // matching pair that logs in.
  CHECK((unchanged || points));
  if (points) {
    CHECK(row.pair_matches == true);
    row.login_ok = row.pair_matches == true && login_ok(node);
  }
  // Whatever pair the node holds matches, whether or not the config names it yet.
  CHECK(row.pair_matches != false);

  // The CA already issued a live certificate for the name, so enrolling again takes a token
  // pinned to it.
  const RunResult again =
      evpn::test::run(w.deployment.enroll_command(node, w.deployment.token("lab", {"--username", node.username})));
  INFO("recovery stdout: " << again.out << "\nstderr: " << again.err);
  row.recovery_exit = again.exit_code;
  row.recovered =
      again.exit_code == 0 && pair_matches(node) && config_points_at_current(node, lab_overlay) && login_ok(node);
  CHECK(row.recovered);
  row.leftovers = leftovers(node);
  if (row.recovered) CHECK_THAT(row.leftovers, !Catch::Matchers::Contains(".staging-"));
  return row;
}

}  // namespace

TEST_CASE("the crash tests cover every stop point in the agent's sources") {
  std::set<std::string> in_sources;
  const std::regex call(R"re(test_step\("([a-z-]+)"\))re");
  for (const auto& e : fs::directory_iterator(fs::path(EVPN_SOURCE_DIR) / "agent")) {
    const std::string text = read_file(e.path());
    for (std::sregex_iterator m(text.begin(), text.end(), call), end; m != end; ++m) in_sources.insert((*m)[1]);
  }
  CHECK(in_sources == std::set<std::string>(steps.begin(), steps.end()));
}

TEST_CASE("a renewal killed at any step leaves a matching pair that the unchanged config points at") {
  std::vector<Row> rows;
  for (const auto& step : steps) rows.push_back(kill_renewal_at(step));
  print_table("evpn-agent renew --force killed (SIGKILL) at each step:", rows);
}

TEST_CASE("an enrollment killed at any step leaves the config as it was or pointing at a matching pair") {
  std::vector<Row> rows;
  for (const auto& step : steps) rows.push_back(kill_enrollment_at(step));
  print_table("evpn-agent enroll killed (SIGKILL) at each step:", rows);
}
