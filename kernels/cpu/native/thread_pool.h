// A small persistent pool: the calling thread is participant 0, workers are 1..size-1.
#pragma once

#include <functional>

namespace sparse {

// Participants (caller included): the CPUs this process may run on, capped by SPARSE_NUM_THREADS.
int poolSize();

// Runs fn(t, nt) for t in [0, nt), where nt = min(wanted, poolSize()), and returns nt. Blocks until
// all parts are done. When the pool is already busy (a call from another thread), runs fn(0, 1) on
// the caller instead of queueing, so cores are never oversubscribed. Exceptions from any part are
// rethrown on the caller (the first one wins).
int parallelRun(int wanted, const std::function<void(int t, int nt)>& fn);

}  // namespace sparse
