#pragma once
// A Debian root file system booted with a real systemd under systemd-nspawn, for tests of the
// units in deploy/systemd. The container shares the host's network, so it reaches servers on
// the host's loopback. Needs root, systemd-nspawn and nsenter; set-up failures throw
// std::runtime_error with nspawn's output.

#include "tests/support/process.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace evpn::test {

class BootedContainer {
 public:
  // Boots `root` and returns once its systemd answers systemctl (boot may still be going on).
  // nspawn's output (the boot messages) goes to `log`.
  BootedContainer(const std::filesystem::path& root, const std::filesystem::path& log);
  BootedContainer(const BootedContainer&) = delete;
  BootedContainer& operator=(const BootedContainer&) = delete;
  // Powers the container off; if it has not stopped within 30 s, SIGKILLs its init, which ends
  // every process in it, then nspawn.
  ~BootedContainer();

  // Runs argv inside the container (its mount, UTS, IPC, network and PID namespaces), without a shell.
  RunResult exec(std::vector<std::string> argv, std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // `systemctl show --value -p <property> <unit>`, without its final newline.
  std::string property(const std::string& unit, const std::string& property) const;
  // The unit's journal for this boot, messages only.
  std::string journal(const std::string& unit) const;

 private:
  std::filesystem::path log_;
  std::optional<BackgroundProcess> nspawn_;
  pid_t init_ = -1;
};


}  // namespace evpn::test
