#include "common/fs/atomic_file.hpp"

#include <cerrno>
#include <cstring>
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

}  // namespace

Result<void> sync_directory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return os_error("cannot sync directory", dir);
  return {};
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               std::filesystem::perms mode) {
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
