#include "thread_pool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace sparse {
namespace {

// True on pool workers and on a caller while it runs its own part: a parallelRun from there is
// nested and runs on that thread alone (re-locking busy_ from its owner would be undefined).
thread_local bool tInsidePool = false;

struct InsideScope {
  bool saved;
  InsideScope() : saved(tInsidePool) { tInsidePool = true; }
  ~InsideScope() { tInsidePool = saved; }
};

int detectPoolSize() {
  int cpus = 0;
#if defined(__linux__)
  // Honour taskset/cgroup CPU masks, which hardware_concurrency() ignores.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
#endif
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus <= 0) cpus = 1;
  if (const char* env = std::getenv("SPARSE_NUM_THREADS")) {
    char* end = nullptr;
    const long cap = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && cap >= 1) cpus = static_cast<int>(std::min<long>(cpus, cap));
  }
  return std::min(cpus, 256);
}

class Pool {
 public:
  explicit Pool(int size) : size_(size) {}

  int size() const { return size_; }

  int run(int wanted, const std::function<void(int, int)>& fn) {
    const int nt = std::min(wanted, size_);
    if (nt <= 1 || tInsidePool) {
      fn(0, 1);
      return 1;
    }
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      // Another thread (or a nested call) holds the pool: run alone rather than oversubscribe.
      fn(0, 1);
      return 1;
    }
    startWorkers();
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &fn;
      active_ = nt;
      pending_ = nt - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    try {
      InsideScope inside;
      fn(0, nt);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
    }
    std::exception_ptr error;
    {
      std::unique_lock<std::mutex> lk(m_);
      done_.wait(lk, [this] { return pending_ == 0; });
      job_ = nullptr;
      error = error_;
      error_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
    return nt;
  }

 private:
  void startWorkers() {
    // Called with busy_ held; threads are created on first parallel use, not at load time.
    if (!workers_.empty()) return;
    for (int id = 1; id < size_; ++id) workers_.emplace_back([this, id] { workerLoop(id); });
  }

  void workerLoop(int id) {
    tInsidePool = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      wake_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= active_) continue;
      const auto* job = job_;
      const int nt = active_;
      lk.unlock();
      try {
        (*job)(id, nt);
      } catch (...) {
        std::lock_guard<std::mutex> guard(m_);
        if (!error_) error_ = std::current_exception();
      }
      lk.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  const int size_;
  std::mutex busy_;
  std::mutex m_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  int active_ = 0;
  int pending_ = 0;
  const std::function<void(int, int)>* job_ = nullptr;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  // Deliberately leaked: worker threads block forever and die with the process, so no exit-time
  // join can hang and no destructor races a worker.
  static Pool* instance = new Pool(detectPoolSize());
  return *instance;
}

}  // namespace

int poolSize() { return pool().size(); }

int parallelRun(int wanted, const std::function<void(int, int)>& fn) { return pool().run(wanted, fn); }

}  // namespace sparse
