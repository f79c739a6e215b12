#pragma once
// Group commit: the writes that threads submit at the same time share one transaction and one fsync.

#include "ca-service/store/database.hpp"
#include "ca-service/store/store.hpp"
#include "common/result.hpp"

#include <functional>
#include <mutex>
#include <vector>

namespace evpn::ca::store {

class GroupCommit {
 public:
  using Write = std::function<Result<void>(Connection&)>;

  // Writes through `db`, which `db_mutex` guards (the store's other writes hold it too).
  GroupCommit(Connection& db, std::mutex& db_mutex) : db_(db), db_mutex_(db_mutex) {}

  // Runs `write` inside a transaction shared with the writes other threads submit meanwhile: each
  // runs in its own savepoint, so one that fails is undone alone, and one COMMIT makes the batch
  // durable before any of its writers returns. The calling thread either commits the batch itself
  // or waits for the thread that does.
  Result<void> run(const Write& write);

  // Calls `observer` after every commit from now on; set it before writes begin.
  void observe(CommitObserver observer) { observer_ = std::move(observer); }

 private:
  struct Pending;
  std::vector<Result<void>> commit(const std::vector<Pending*>& batch);

  Connection& db_;
  std::mutex& db_mutex_;
  std::mutex mutex_;
  std::vector<Pending*> queue_;  // writes waiting for the next batch
  bool committing_ = false;      // whether a thread is committing a batch
  CommitObserver observer_;
};

}  // namespace evpn::ca::store
