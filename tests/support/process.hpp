#pragma once
// Process, port and directory helpers for integration tests. Failures to set things up
// (fork, pipe, mkdtemp) throw std::runtime_error: they are start-up failures of the test.

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace evpn::test {

// Extra environment variables for a child, added to (or replacing those of) the parent's.
using Environment = std::map<std::string, std::string>;

struct RunResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when the child was killed
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null, captures stdout and stderr,
// and kills it with SIGKILL when it runs longer than `timeout`.
RunResult run(const std::vector<std::string>& argv,
              std::chrono::seconds timeout = std::chrono::seconds(120),
              const Environment& env = {});

// A child process running in the background with stdout and stderr appended to a log file.
// Move-only; the destructor stops it.
class BackgroundProcess {
 public:
  // Starts argv[0] (looked up in PATH) in `working_dir` (the current one when empty).
  BackgroundProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                    const Environment& env = {}, const std::filesystem::path& working_dir = {});
  BackgroundProcess(BackgroundProcess&& other) noexcept;
  BackgroundProcess& operator=(BackgroundProcess&& other) noexcept;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess();

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool alive();
  // Sends `signal`, waits up to `grace` for the child to exit, then SIGKILLs it. Returns its
  // exit code as run() reports it; -1 when there was no child.
  int stop(int signal = SIGTERM, std::chrono::seconds grace = std::chrono::seconds(10));

 private:
  pid_t pid_ = -1;
  int status_ = 0;  // wait status, valid once reaped_
  bool reaped_ = false;
};

// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, read it, close).
std::uint16_t free_port();

// Polls `condition` every `step`; true once it holds, false when `timeout` passes first.
bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(200));

// True once something accepts TCP connections on 127.0.0.1:port, false after `timeout`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

// A fresh directory under /tmp, removed with its content at destruction unless the
// environment variable EVPN_KEEP_TEST_DIRS is set. Move-only.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "evpn-test");
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace evpn::test
