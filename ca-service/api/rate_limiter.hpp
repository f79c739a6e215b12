#pragma once
// Counts attempts per key (a client address, a token id, a username) over a sliding window, so
// that tokens cannot be guessed online and a node cannot renew in a loop. In memory, and, for the
// replicas of a CA on one PostgreSQL store, in the store as well: each replica then also refuses a
// key whose attempts counted by all of them fill the window.

#include "ca-service/store/store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>

namespace evpn::ca::api {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // One counted attempt of `key`, taken back with release(). Id 0 counts nothing (no limit).
  struct Reservation {
    std::string key;
    std::uint64_t id = 0;
  };

  // Hears at most `limit` attempts per key within any `window` (0: no limit), and remembers at
  // most `max_keys` keys, forgetting the one least recently counted first. Thread-safe.
  RateLimiter(int limit, std::chrono::seconds window, std::size_t max_keys = 10000);
  // The same, also counting in `shared` under the name `kind` (whole seconds of wall-clock time).
  // Attempts still being handled by another replica are not seen there, so N replicas hear at most
  // limit + (N - 1) * (attempts in flight at once) per window; a store that does not answer adds
  // no refusal (the request it would refuse finds the store down too).
  RateLimiter(int limit, std::chrono::seconds window, store::Store* shared, std::string kind);

  // Counts an attempt of `key` at `now` before it is handled, so that attempts handled at the
  // same time all count. Returns its reservation, or, when `limit` attempts already fill the
  // window, how long `key` must wait (whole seconds, rounded up; never zero) and counts nothing.
  // While attempts still being handled fill the window, it waits up to `patience` for one of them
  // to settle (at most max_waiting callers wait at a time, so waiting cannot take every thread).
  std::variant<Reservation, std::chrono::seconds> reserve(const std::string& key, Clock::time_point now,
                                                          std::chrono::milliseconds patience = {});

  // The reserved attempt counts, for the rest of its window.
  void confirm(const Reservation& reservation);
  // Takes back a reservation whose attempt turned out not to count.
  void release(const Reservation& reservation);

  static constexpr int max_waiting = 8;

  // How many keys are remembered (for tests of the memory bound).
  std::size_t size();

 private:
  struct Attempt {
    Clock::time_point at;
    std::uint64_t id;
    bool pending;  // reserved, neither confirmed nor released yet
  };
  void make_room(Clock::time_point now);
  std::variant<Reservation, std::chrono::seconds> reserve_here(const std::string& key, Clock::time_point now,
                                                               std::chrono::milliseconds patience);
  // Applies `change` to the attempt of `reservation`, if still remembered, and wakes the waiters.
  template <class Change>
  void settle(const Reservation& reservation, Change change);

  const std::size_t limit_;
  const std::chrono::seconds window_;
  const std::size_t max_keys_;
  store::Store* shared_ = nullptr;
  std::string kind_;
  std::mutex mutex_;
  std::condition_variable settled_;
  int waiting_ = 0;
  std::uint64_t last_id_ = 0;
  // The key's counted attempts within the window, oldest first, at most limit_ of them.
  std::unordered_map<std::string, std::deque<Attempt>> recent_;
};

}  // namespace evpn::ca::api
