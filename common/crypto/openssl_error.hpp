#pragma once

#include "common/result.hpp"

#include <string>

namespace evpn::crypto {

// Drains OpenSSL's error queue of this thread into one line ("" when it is empty).
std::string drain_openssl_errors();

// Clears this thread's OpenSSL error queue when it goes out of scope. For calls whose failure is an
// answer rather than an error (a key that does not match its certificate, the end of a PEM bundle):
// left on the queue, what they queued would show up in the detail of the next, unrelated failure.
class ErrorQueueGuard {
 public:
  ErrorQueueGuard() = default;
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
  ~ErrorQueueGuard();
};

// An Error whose detail is `what` followed by the drained OpenSSL error queue.
Error openssl_failure(Errc code, const std::string& what);

}  // namespace evpn::crypto
