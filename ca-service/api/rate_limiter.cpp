#include "ca-service/api/rate_limiter.hpp"

#include "ca-service/log.hpp"

#include <algorithm>

namespace evpn::ca::api {

RateLimiter::RateLimiter(int limit, std::chrono::seconds window, std::size_t max_keys)
    : limit_(static_cast<std::size_t>(std::max(limit, 0))),
      window_(window),
      max_keys_(std::max<std::size_t>(max_keys, 1)) {}

RateLimiter::RateLimiter(int limit, std::chrono::seconds window, store::Store* shared, std::string kind)
    : RateLimiter(limit, window) {
  shared_ = shared;
  kind_ = std::move(kind);
}

std::variant<RateLimiter::Reservation, std::chrono::seconds> RateLimiter::reserve(
    const std::string& key, Clock::time_point now, std::chrono::milliseconds patience) {
  auto here = reserve_here(key, now, patience);
  auto* reservation = std::get_if<Reservation>(&here);
  if (!shared_ || !reservation || reservation->id == 0) return here;
  // What every replica counted, asked outside the lock: a store query must not hold up the others.
  const TimePoint wall = now_seconds();
  auto counted = shared_->count_attempts(kind_, key, wall - window_ + std::chrono::seconds(1));
  if (!counted || counted->count < static_cast<long long>(limit_) || !counted->oldest) return here;
  release(*reservation);
  return std::max(std::chrono::duration_cast<std::chrono::seconds>(*counted->oldest + window_ - wall),
                  std::chrono::seconds(1));
}

std::variant<RateLimiter::Reservation, std::chrono::seconds> RateLimiter::reserve_here(
    const std::string& key, Clock::time_point now, std::chrono::milliseconds patience) {
  std::unique_lock lock(mutex_);
  if (limit_ == 0) return Reservation{key, 0};
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    // Looked up afresh after every wait: make_room may have dropped the key meanwhile.
    auto it = recent_.find(key);
    if (it == recent_.end()) {
      if (recent_.size() >= max_keys_) make_room(now);
      it = recent_.try_emplace(key).first;
    }
    auto& attempts = it->second;
    while (!attempts.empty() && attempts.front().at + window_ <= now) attempts.pop_front();
    if (attempts.size() < limit_) {
      attempts.push_back({now, ++last_id_, true});
      return Reservation{key, last_id_};
    }
    const bool undecided = std::any_of(attempts.begin(), attempts.end(), [](const Attempt& a) { return a.pending; });
    if (undecided && waiting_ < max_waiting && std::chrono::steady_clock::now() < give_up) {
      ++waiting_;
      settled_.wait_until(lock, give_up);
      --waiting_;
      continue;
    }
    // The window frees when its oldest attempt leaves it; rounded up so that a client that waits
    // exactly Retry-After seconds is heard.
    const auto wait = std::chrono::ceil<std::chrono::seconds>(attempts.front().at + window_ - now);
    return std::max(wait, std::chrono::seconds(1));
  }
}

template <class Change>
void RateLimiter::settle(const Reservation& reservation, Change change) {
  if (reservation.id == 0) return;
  {
    std::lock_guard lock(mutex_);
    auto it = recent_.find(reservation.key);
    if (it == recent_.end()) return;
    change(it->second);
    if (it->second.empty()) recent_.erase(it);
  }
  settled_.notify_all();
}

void RateLimiter::confirm(const Reservation& reservation) {
  settle(reservation, [&](std::deque<Attempt>& attempts) {
    for (auto& a : attempts)
      if (a.id == reservation.id) a.pending = false;
  });
  if (!shared_ || reservation.id == 0) return;
  const TimePoint wall = now_seconds();
  if (auto r = shared_->record_attempt(kind_, reservation.key, wall, wall - window_); !r)
    spdlog::warn("cannot count an attempt of {} in the store: {}", kind_, r.error().detail);
}

void RateLimiter::release(const Reservation& reservation) {
  settle(reservation, [&](std::deque<Attempt>& attempts) {
    std::erase_if(attempts, [&](const Attempt& a) { return a.id == reservation.id; });
  });
}

std::size_t RateLimiter::size() {
  std::lock_guard lock(mutex_);
  return recent_.size();
}

void RateLimiter::make_room(Clock::time_point now) {
  std::erase_if(recent_, [&](const auto& entry) {
    return entry.second.empty() || entry.second.back().at + window_ <= now;
  });
  if (recent_.size() < max_keys_) return;
  // Still full of live keys (a flood of addresses or made-up token ids): forget the key whose
  // last attempt is oldest, so the memory stays bounded; a forgotten key starts afresh.
  auto oldest = std::min_element(recent_.begin(), recent_.end(), [](const auto& a, const auto& b) {
    return a.second.back().at < b.second.back().at;
  });
  recent_.erase(oldest);
}

}  // namespace evpn::ca::api
