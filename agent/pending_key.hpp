#pragma once
// The key of a request to the CA (enrollment or renewal), kept on disk until the request's outcome
// is final. The CA commits before it answers; when the answer is lost (the connection dropped, the
// agent was killed, the login or a local write failed), the retry sends the same public key, and
// the CA recognises the same request and answers the certificate it already issued instead of
// refusing a second one.

#include "common/crypto/key.hpp"
#include "common/result.hpp"

#include <filesystem>

namespace evpn::agent {

class PendingKey {
 public:
  // `file` is <state-dir>/.enroll-key or <state-dir>/.renew-key.
  explicit PendingKey(std::filesystem::path file) : file_(std::move(file)) {}

  // The kept key when there is one of `type`; else a new key, written (0600, atomically, with the
  // state directory created 0700) before it is returned, so that it is on disk before any request
  // carries it.
  Result<crypto::Key> get(crypto::KeyType type) const;

  // The CA refused the request carrying this key: a final refusal (anything but "try again later")
  // drops the key, since a retry would be refused again.
  void refused(const Error& e) const noexcept;

  // The outcome is final (the certificate is in use): the key now lives in the node's pair.
  void drop() const noexcept;

  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  std::filesystem::path file_;
};

}  // namespace evpn::agent
