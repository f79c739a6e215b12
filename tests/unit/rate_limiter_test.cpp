#include "ca-service/api/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using evpn::ca::api::RateLimiter;
using namespace std::chrono_literals;

const RateLimiter::Clock::time_point t0{};

}  // namespace

TEST_CASE("the limiter hears a key until its failures fill the window, then says how long to wait") {
  RateLimiter limiter(3, 60s);
  for (int i = 0; i < 3; ++i) {
    CHECK(limiter.retry_after("10.0.0.1", t0 + std::chrono::seconds(i)) == 0s);
    limiter.record_failure("10.0.0.1", t0 + std::chrono::seconds(i));
  }
  // The oldest failure (at 0 s) leaves the window at 60 s.
  CHECK(limiter.retry_after("10.0.0.1", t0 + 10s) == 50s);
  CHECK(limiter.retry_after("10.0.0.1", t0 + 59500ms) == 1s);
  CHECK(limiter.retry_after("10.0.0.1", t0 + 60s) == 0s);
  // Other keys are not affected.
  CHECK(limiter.retry_after("10.0.0.2", t0 + 10s) == 0s);
}

TEST_CASE("the window slides: only failures within the last window count") {
  RateLimiter limiter(2, 10s);
  limiter.record_failure("k", t0);
  limiter.record_failure("k", t0 + 8s);
  CHECK(limiter.retry_after("k", t0 + 9s) == 1s);
  CHECK(limiter.retry_after("k", t0 + 10s) == 0s);
  limiter.record_failure("k", t0 + 11s);
  // Failures at 8 s and 11 s: limited until 18 s.
  CHECK(limiter.retry_after("k", t0 + 12s) == 6s);
  CHECK(limiter.retry_after("k", t0 + 30s) == 0s);
  CHECK(limiter.size() == 0);
}

TEST_CASE("a limit of zero failures turns the limiter off") {
  RateLimiter limiter(0, 60s);
  for (int i = 0; i < 100; ++i) limiter.record_failure("k", t0);
  CHECK(limiter.retry_after("k", t0) == 0s);
  CHECK(limiter.size() == 0);
}

TEST_CASE("the limiter remembers at most max_keys keys, forgetting stale ones first") {
  RateLimiter limiter(1, 60s, 3);
  limiter.record_failure("old", t0);
  limiter.record_failure("a", t0 + 100s);
  limiter.record_failure("b", t0 + 101s);
  // "old" has left its window: it makes room for "c".
  limiter.record_failure("c", t0 + 102s);
  CHECK(limiter.size() == 3);
  CHECK(limiter.retry_after("a", t0 + 102s) > 0s);
  // All live now: the key whose last failure is oldest ("a") goes.
  limiter.record_failure("d", t0 + 103s);
  CHECK(limiter.size() == 3);
  CHECK(limiter.retry_after("a", t0 + 103s) == 0s);
  CHECK(limiter.retry_after("b", t0 + 103s) > 0s);
  CHECK(limiter.retry_after("d", t0 + 103s) > 0s);
  for (int i = 0; i < 1000; ++i) limiter.record_failure("flood" + std::to_string(i), t0 + 104s);
  CHECK(limiter.size() == 3);
}
