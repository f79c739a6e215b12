#include "ca-service/store/batch.hpp"

#include <condition_variable>
#include <exception>
#include <optional>
#include <string>

namespace evpn::ca::store {

struct GroupCommit::Pending {
  const Write& write;
  std::optional<Result<void>> result{};
  std::condition_variable wake{};  // its result is in, or it may lead the next batch
};

Result<void> GroupCommit::run(const Write& write) {
  Pending mine{write};
  std::unique_lock lock(mutex_);
  queue_.push_back(&mine);
  while (!mine.result) {
    if (committing_) {
      mine.wake.wait(lock);
      continue;
    }
    // No batch is being committed: this thread commits every write queued so far, its own included.
    committing_ = true;
    std::vector<Pending*> batch;
    batch.swap(queue_);
    lock.unlock();
    std::vector<Result<void>> results = commit(batch);
    lock.lock();
    // Only the writers of this batch are woken, and the first writer queued since, to commit the
    // next: waking every waiting thread to find most of them still waiting costs each a futex round.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->result = std::move(results[i]);
      batch[i]->wake.notify_one();
    }
    committing_ = false;
    if (!queue_.empty()) queue_.front()->wake.notify_one();
  }
  return *mine.result;
}

std::vector<Result<void>> GroupCommit::commit(const std::vector<Pending*>& batch) {
  std::lock_guard lock(db_mutex_);
  const auto started = std::chrono::steady_clock::now();
  auto tx = Transaction::begin(db_);
  if (!tx) return std::vector<Result<void>>(batch.size(), tx.error());
  std::vector<Result<void>> results;
  for (Pending* pending : batch) {
    // Each write in a savepoint of its own: one that fails is undone alone.
    Result<void> r = store::run(db_, "SAVEPOINT batched_write");
    if (!r) return std::vector<Result<void>>(batch.size(), r.error());
    try {
      r = pending->write(db_);
    } catch (const std::exception& e) {
      r = fail(Errc::internal, std::string("a write to the CA store threw: ") + e.what());
    }
    if (!r)
      if (auto undone = store::run(db_, "ROLLBACK TO batched_write"); !undone)
        return std::vector<Result<void>>(batch.size(), undone.error());
    if (auto released = store::run(db_, "RELEASE batched_write"); !released)
      return std::vector<Result<void>>(batch.size(), released.error());
    results.push_back(std::move(r));
  }
  // One COMMIT, one fsync, makes every write of the batch durable; until it succeeds none counts.
  if (auto committed = tx->commit(); !committed)
    for (auto& r : results)
      if (r) r = committed.error();
  if (observer_) observer_(std::chrono::steady_clock::now() - started, batch.size());
  return results;
}

}  // namespace evpn::ca::store
