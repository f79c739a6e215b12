#pragma once
// Counts failed attempts per key (a client address, a token id) over a sliding window, so that
// tokens cannot be guessed online. In memory only: a restart of `serve` forgets the counts.

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace evpn::ca::api {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Hears at most `failures` failed attempts per key within any `window` (0 failures: no limit),
  // and remembers at most `max_keys` keys, forgetting the least recently failed first.
  // Thread-safe.
  RateLimiter(int failures, std::chrono::seconds window, std::size_t max_keys = 10000);

  // How long `key` must wait until its next attempt is heard (whole seconds, rounded up);
  // zero when it may try now.
  std::chrono::seconds retry_after(const std::string& key, Clock::time_point now);

  // Counts one failed attempt of `key` at `now`.
  void record_failure(const std::string& key, Clock::time_point now);

  // How many keys are remembered (for tests of the memory bound).
  std::size_t size();

 private:
  void make_room(Clock::time_point now);

  const std::size_t failures_;
  const std::chrono::seconds window_;
  const std::size_t max_keys_;
  std::mutex mutex_;
  // The times of the key's most recent failures, oldest first, at most failures_ of them.
  std::unordered_map<std::string, std::deque<Clock::time_point>> recent_;
};

}  // namespace evpn::ca::api
