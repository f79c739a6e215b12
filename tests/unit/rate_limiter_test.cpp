#include "ca-service/api/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

namespace {

using evpn::ca::api::RateLimiter;
using namespace std::chrono_literals;

const RateLimiter::Clock::time_point t0{};

// How long `key` must wait at `at`; zero when the attempt was heard (and is now counted).
std::chrono::seconds wait_of(RateLimiter& limiter, const std::string& key, RateLimiter::Clock::time_point at) {
  auto reserved = limiter.reserve(key, at);
  return std::holds_alternative<std::chrono::seconds>(reserved) ? std::get<std::chrono::seconds>(reserved) : 0s;
}

}  // namespace

TEST_CASE("the limiter hears a key until its attempts fill the window, then says how long to wait") {
  RateLimiter limiter(3, 60s);
  for (int i = 0; i < 3; ++i) CHECK(wait_of(limiter, "10.0.0.1", t0 + std::chrono::seconds(i)) == 0s);
  // The oldest attempt (at 0 s) leaves the window at 60 s.
  CHECK(wait_of(limiter, "10.0.0.1", t0 + 10s) == 50s);
  CHECK(wait_of(limiter, "10.0.0.1", t0 + 59500ms) == 1s);
  CHECK(wait_of(limiter, "10.0.0.1", t0 + 60s) == 0s);
  // Other keys are not affected.
  CHECK(wait_of(limiter, "10.0.0.2", t0 + 10s) == 0s);
}

TEST_CASE("the window slides: only attempts within the last window count") {
  RateLimiter limiter(2, 10s);
  CHECK(wait_of(limiter, "k", t0) == 0s);
  CHECK(wait_of(limiter, "k", t0 + 8s) == 0s);
  CHECK(wait_of(limiter, "k", t0 + 9s) == 1s);
  CHECK(wait_of(limiter, "k", t0 + 11s) == 0s);
  // Attempts at 8 s and 11 s: limited until 18 s.
  CHECK(wait_of(limiter, "k", t0 + 12s) == 6s);
  CHECK(wait_of(limiter, "k", t0 + 30s) == 0s);
}

TEST_CASE("a released reservation no longer counts") {
  RateLimiter limiter(2, 60s);
  auto first = std::get<RateLimiter::Reservation>(limiter.reserve("k", t0));
  CHECK(wait_of(limiter, "k", t0 + 1s) == 0s);
  CHECK(wait_of(limiter, "k", t0 + 2s) > 0s);
  limiter.release(first);
  CHECK(wait_of(limiter, "k", t0 + 3s) == 0s);
  CHECK(wait_of(limiter, "k", t0 + 4s) == 57s);
}

TEST_CASE("attempts reserved at the same moment are heard only up to the limit") {
  RateLimiter limiter(3, 60s);
  constexpr int attempts = 10;
  std::latch start(attempts);
  std::atomic<int> heard{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < attempts; ++i)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      if (std::holds_alternative<RateLimiter::Reservation>(limiter.reserve("10.0.0.1", t0))) ++heard;
    });
  for (auto& t : threads) t.join();
  CHECK(heard == 3);
}

TEST_CASE("an attempt that finds the window full of attempts still being handled waits for their outcome") {
  RateLimiter limiter(1, 60s);
  auto ahead = std::get<RateLimiter::Reservation>(limiter.reserve("k", t0));
  // The attempt ahead succeeds: its place is free for the one waiting.
  std::thread succeeds([&] { limiter.release(ahead); });
  CHECK(std::holds_alternative<RateLimiter::Reservation>(limiter.reserve("k", t0, 60s)));
  succeeds.join();

  RateLimiter failing(1, 60s);
  auto failed = std::get<RateLimiter::Reservation>(failing.reserve("k", t0));
  // The attempt ahead fails: the one waiting is refused.
  std::thread fails([&] { failing.confirm(failed); });
  auto refused = failing.reserve("k", t0 + 1s, 60s);
  fails.join();
  REQUIRE(std::holds_alternative<std::chrono::seconds>(refused));
  CHECK(std::get<std::chrono::seconds>(refused) == 59s);
}

TEST_CASE("a limit of zero turns the limiter off") {
  RateLimiter limiter(0, 60s);
  for (int i = 0; i < 100; ++i) CHECK(wait_of(limiter, "k", t0) == 0s);
  CHECK(limiter.size() == 0);
}

TEST_CASE("the limiter remembers at most max_keys keys, forgetting stale ones first") {
  RateLimiter limiter(1, 60s, 3);
  wait_of(limiter, "old", t0);
  wait_of(limiter, "a", t0 + 100s);
  wait_of(limiter, "b", t0 + 101s);
  // "old" has left its window: it makes room for "c".
  wait_of(limiter, "c", t0 + 102s);
  CHECK(limiter.size() == 3);
  CHECK(wait_of(limiter, "a", t0 + 102s) > 0s);
  // All live now: the key whose last attempt is oldest ("a") goes.
  wait_of(limiter, "d", t0 + 103s);
  CHECK(limiter.size() == 3);
  CHECK(wait_of(limiter, "b", t0 + 103s) > 0s);
  CHECK(wait_of(limiter, "d", t0 + 103s) > 0s);
  CHECK(wait_of(limiter, "a", t0 + 103s) == 0s);
  for (int i = 0; i < 1000; ++i) wait_of(limiter, "flood" + std::to_string(i), t0 + 104s);
  CHECK(limiter.size() == 3);
}
