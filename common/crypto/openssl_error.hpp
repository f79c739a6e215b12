#pragma once

#include "common/result.hpp"

#include <string>

namespace evpn::crypto {

// Drains OpenSSL's error queue of this thread into one line ("" when it is empty).
std::string drain_openssl_errors();

// An Error whose detail is `what` followed by the drained OpenSSL error queue.
Error openssl_failure(Errc code, const std::string& what);

}  // namespace evpn::crypto
