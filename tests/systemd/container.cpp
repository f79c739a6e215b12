#include "tests/systemd/container.hpp"

#include "tests/support/deployment.hpp"

#include <csignal>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace evpn::test {

namespace fs = std::filesystem;

namespace {

// The pid of a child of `parent` whose command name is `comm`, or -1.
pid_t child_named(pid_t parent, const std::string& comm) {
  std::ifstream children("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
  for (pid_t pid; children >> pid;) {
    const std::string name = read_file("/proc/" + std::to_string(pid) + "/comm");
    if (name == comm + "\n") return pid;
  }
  return -1;
}

}  // namespace


BootedContainer::BootedContainer(const fs::path& root, const fs::path& log) : log_(log) {
  // --register=no: the host has no systemd-machined (nor a system bus) to register with;
  // --keep-unit: nor a systemd to create a scope unit for the container.
  nspawn_.emplace(std::vector<std::string>{"systemd-nspawn", "--register=no", "--keep-unit", "--console=read-only",
                                           "-D", root.string(), "-b"},
                  log);
  const bool booted = eventually(
      [&] {
        if (!nspawn_->alive()) return true;
        if (init_ < 0) init_ = child_named(nspawn_->pid(), "systemd");
        return init_ >= 0 && exec({"systemctl", "show", "-p", "Version"}, std::chrono::seconds(10)).exit_code == 0;
      },
      std::chrono::seconds(60));
  if (!booted || !nspawn_->alive()) {
    nspawn_.reset();
    throw std::runtime_error("the container did not boot; systemd-nspawn's output:\n" + read_file(log));
  }
}

BootedContainer::~BootedContainer() {
  if (!nspawn_) return;
  exec({"systemctl", "poweroff"}, std::chrono::seconds(10));
  if (!eventually([&] { return !nspawn_->alive(); }, std::chrono::seconds(30)) && init_ > 0)
    ::kill(init_, SIGKILL);
  nspawn_->stop(SIGTERM, std::chrono::seconds(10));
}

RunResult BootedContainer::exec(std::vector<std::string> argv, std::chrono::seconds timeout) const {
  std::vector<std::string> full{"nsenter", "-t", std::to_string(init_), "-m", "-u", "-i", "-n", "-p", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full, timeout);
}

std::string BootedContainer::property(const std::string& unit, const std::string& name) const {
  const std::string out = exec({"systemctl", "show", "--value", "-p", name, unit}).out;
  return out.substr(0, out.find_last_not_of('\n') + 1);
}

std::string BootedContainer::journal(const std::string& unit) const {
  return exec({"journalctl", "--no-pager", "-b", "-o", "cat", "-u", unit}).out;
}

}  // namespace evpn::test
