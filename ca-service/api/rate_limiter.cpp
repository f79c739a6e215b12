#include "ca-service/api/rate_limiter.hpp"

#include <algorithm>

namespace evpn::ca::api {

RateLimiter::RateLimiter(int limit, std::chrono::seconds window, std::size_t max_keys)
    : limit_(static_cast<std::size_t>(std::max(limit, 0))),
      window_(window),
      max_keys_(std::max<std::size_t>(max_keys, 1)) {}

std::variant<RateLimiter::Reservation, std::chrono::seconds> RateLimiter::reserve(const std::string& key,
                                                                                  Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (limit_ == 0) return Reservation{key, 0};
  auto it = recent_.find(key);
  if (it == recent_.end()) {
    if (recent_.size() >= max_keys_) make_room(now);
    it = recent_.try_emplace(key).first;
  }
  auto& attempts = it->second;
  while (!attempts.empty() && attempts.front().at + window_ <= now) attempts.pop_front();
  if (attempts.size() >= limit_) {
    // The window frees when its oldest attempt leaves it; rounded up so that a client that waits
    // exactly Retry-After seconds is heard.
    const auto wait = std::chrono::ceil<std::chrono::seconds>(attempts.front().at + window_ - now);
    return std::max(wait, std::chrono::seconds(1));
  }
  attempts.push_back({now, ++last_id_});
  return Reservation{key, last_id_};
}

void RateLimiter::release(const Reservation& reservation) {
  if (reservation.id == 0) return;
  std::lock_guard lock(mutex_);
  auto it = recent_.find(reservation.key);
  if (it == recent_.end()) return;
  std::erase_if(it->second, [&](const Attempt& a) { return a.id == reservation.id; });
  if (it->second.empty()) recent_.erase(it);
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
