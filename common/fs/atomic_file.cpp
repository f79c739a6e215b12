#include "common/fs/atomic_file.hpp"

#include <cerrno>
#include <cstring>
#include <optional>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evpn::fs {

namespace {

Error os_error(const std::string& what, const std::filesystem::path& path) {
  return fail(Errc::io, what + " " + path.string() + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// The owner a replacement file must get; nullopt: whoever creates it.
struct Owner {
  uid_t uid;
  gid_t gid;
};

Result<void> write_atomic(const std::filesystem::path& path, std::string_view data, std::filesystem::perms mode,
                          std::optional<Owner> owner) {
  const auto dir = path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  // mkstemp creates the file 0600, so a key is never readable by others, not even briefly.
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0) return os_error("cannot create a temporary file next to", path);
  const std::filesystem::path tmp = tmpl;
  auto cleanup = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  // The owner before the mode: chown may clear set-id bits that the mode restores.
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0)
    return cleanup(os_error("cannot keep the owner and group of", path));
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return cleanup(os_error("cannot chmod", tmp));
  for (std::size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cleanup(os_error("cannot write", tmp));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return cleanup(os_error("cannot fsync", tmp));
  if (::close(fd.release()) != 0) return cleanup(os_error("cannot close", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return cleanup(os_error("cannot rename into", path));
  return sync_directory(dir);
}

// The file `path` finally names, following symlinks; a link to a file not there yet names it too.
Result<std::filesystem::path> follow_links(std::filesystem::path path) {
  // As many links as the kernel follows (MAXSYMLINKS) before it gives up with ELOOP.
  for (int links = 0; links < 40; ++links) {
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      return fail(Errc::io, "cannot stat " + path.string() + ": " + ec.message());
    if (!std::filesystem::is_symlink(status)) return path;
    auto target = std::filesystem::read_symlink(path, ec);
    if (ec) return fail(Errc::io, "cannot read the symlink " + path.string() + ": " + ec.message());
    path = target.is_absolute() ? target : path.parent_path() / target;
  }
  return fail(Errc::io, path.string() + " is a loop of symlinks");
}

}  // namespace

Result<void> replace_file_atomic(const std::filesystem::path& path, std::string_view data,
                                 std::filesystem::perms new_file_mode) {
  auto target = follow_links(path);
  if (!target) return target.error();
  struct stat st {};
  if (::stat(target->c_str(), &st) != 0) {
    if (errno != ENOENT) return os_error("cannot stat", *target);
    return write_atomic(*target, data, new_file_mode, std::nullopt);
  }
  const auto mode = static_cast<std::filesystem::perms>(st.st_mode & 07777);
  return write_atomic(*target, data, mode, Owner{st.st_uid, st.st_gid});
}

Result<void> sync_directory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return os_error("cannot sync directory", dir);
  return {};
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               std::filesystem::perms mode) {
  return write_atomic(path, data, mode, std::nullopt);
}

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return fail(Errc::not_found, path.string() + " does not exist");
    return os_error("cannot open", path);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("cannot read", path);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes)
      return fail(Errc::io, path.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

}  // namespace evpn::fs
