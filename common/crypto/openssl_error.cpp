#include "common/crypto/openssl_error.hpp"

#include <openssl/err.h>

#include <array>

namespace evpn::crypto {

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out;
}

Error openssl_failure(Errc code, const std::string& what) {
  std::string queue = drain_openssl_errors();
  return Error{code, queue.empty() ? what : what + " (" + queue + ")"};
}

ErrorQueueGuard::~ErrorQueueGuard() { ERR_clear_error(); }

}  // namespace evpn::crypto
