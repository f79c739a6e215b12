#include "ca-service/api/rate_limiter.hpp"

#include <algorithm>

namespace evpn::ca::api {

RateLimiter::RateLimiter(int failures, std::chrono::seconds window, std::size_t max_keys)
    : failures_(static_cast<std::size_t>(std::max(failures, 0))),
      window_(window),
      max_keys_(std::max<std::size_t>(max_keys, 1)) {}

std::chrono::seconds RateLimiter::retry_after(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = recent_.find(key);
  if (failures_ == 0 || it == recent_.end()) return std::chrono::seconds(0);
  auto& times = it->second;
  while (!times.empty() && times.front() + window_ <= now) times.pop_front();
  if (times.empty()) {
    recent_.erase(it);
    return std::chrono::seconds(0);
  }
  if (times.size() < failures_) return std::chrono::seconds(0);
  // The window frees when its oldest failure leaves it; rounded up so that a client that waits
  // exactly Retry-After seconds is heard.
  const auto wait = times.front() + window_ - now;
  return std::chrono::ceil<std::chrono::seconds>(wait);
}

void RateLimiter::record_failure(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (failures_ == 0) return;
  if (!recent_.contains(key) && recent_.size() >= max_keys_) make_room(now);
  auto& times = recent_[key];
  times.push_back(now);
  // Only the last failures_ times decide whether the key is limited.
  while (times.size() > failures_) times.pop_front();
}

std::size_t RateLimiter::size() {
  std::lock_guard lock(mutex_);
  return recent_.size();
}

void RateLimiter::make_room(Clock::time_point now) {
  std::erase_if(recent_, [&](const auto& entry) { return entry.second.back() + window_ <= now; });
  if (recent_.size() < max_keys_) return;
  // Still full of live keys (a flood of addresses or made-up token ids): forget the key whose
  // last failure is oldest, so the memory stays bounded; a forgotten key starts afresh.
  auto oldest = std::min_element(recent_.begin(), recent_.end(),
                                 [](const auto& a, const auto& b) { return a.second.back() < b.second.back(); });
  recent_.erase(oldest);
}

}  // namespace evpn::ca::api
