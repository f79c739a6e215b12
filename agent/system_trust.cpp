#include "agent/system_trust.hpp"

#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crypto/certificate.hpp"
#include "common/fs/atomic_file.hpp"
#include "agent/log.hpp"

extern char** environ;

namespace evpn::agent {
namespace {

Result<void> update_ca_certificates() {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Its progress report must not mix into our stdout, which may be JSON.
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  char name[] = "update-ca-certificates";
  char* argv[] = {name, nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, name, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    return fail(Errc::io, std::string("cannot run update-ca-certificates (") + std::strerror(spawned) +
                              "); install the ca-certificates package");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return fail(Errc::io, std::string("waiting for update-ca-certificates: ") + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(Errc::io, "update-ca-certificates failed (status " + std::to_string(status) + ")");
  return {};
}

}  // namespace

Result<std::filesystem::path> install_system_root(std::string_view root_pem, const std::filesystem::path& dir) {
  auto root = crypto::Certificate::from_pem(root_pem);
  if (!root) return with_context(root.error(), "the CA root");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return fail(Errc::io, dir.string() + " is not a directory; install ca-certificates or give --system-trust-dir");
  // update-ca-certificates only reads *.crt; the fingerprint keeps roots of several CAs apart.
  const auto file = dir / ("evpn-enroll-" + root->fingerprint_sha256().substr(0, 16) + ".crt");
  using std::filesystem::perms;
  if (auto r = fs::write_file_atomic(file, root->to_pem(),
                                     perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
      !r)
    return r.error();
  if (dir == default_system_trust_dir) {
    if (auto r = update_ca_certificates(); !r) return r.error();
  } else {
    log::info("wrote " + file.string() + "; not running update-ca-certificates for a directory other than " +
              default_system_trust_dir.string());
  }
  return file;
}

}  // namespace evpn::agent
