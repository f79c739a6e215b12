#include "agent/pending_key.hpp"

#include "agent/exit_codes.hpp"
#include "common/fs/atomic_file.hpp"

#include <openssl/crypto.h>

#include <system_error>

namespace evpn::agent {

Result<crypto::Key> PendingKey::get(crypto::KeyType type) const {
  if (auto pem = fs::read_file(file_, 64 * 1024)) {
    auto key = crypto::Key::from_pem(*pem);
    OPENSSL_cleanse(pem->data(), pem->size());
    if (key && crypto::key_type_of(key->get()) == type) return key;
  }
  auto key = crypto::Key::generate(type);
  if (!key) return key.error();
  const auto dir = file_.parent_path();
  std::error_code ec;
  if (std::filesystem::create_directories(dir, ec))
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  if (ec) return fail(Errc::io, "cannot create the state directory " + dir.string() + ": " + ec.message());
  if (auto r = fs::write_file_atomic(file_, key->to_pem(),
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      !r)
    return r.error();
  return key;
}

void PendingKey::refused(const Error& e) const noexcept {
  if (exit_for_ca(e) == exit_refused) drop();
}

void PendingKey::drop() const noexcept {
  std::error_code ec;
  std::filesystem::remove(file_, ec);
}

}  // namespace evpn::agent
