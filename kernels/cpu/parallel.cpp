// See parallel.h.
//
// Protocol. The caller (under `mu_`) writes the job (fn, ctx, team), sets `pending_` to the
// number of workers and increments `generation_`; every worker, participating or not, waits
// for `generation_` to change, runs its share if tid < team and decrements `pending_`; the
// caller runs tid 0's share and waits for `pending_` to reach 0. Because every worker
// acknowledges every generation, the job fields are never rewritten while a worker may read
// them. A sleeper announces itself in a `*_sleepers_` counter before it sleeps and the waker
// calls futex_wake only when that counter is non-zero (both sequentially consistent, so
// either the waker sees the sleeper or the sleeper's futex_wait sees the new value).
#include "kernels/cpu/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace sg::kernels::cpu {
namespace {

constexpr int64_t kSpinNs = 250'000;              // how long a waiting thread spins before it sleeps
constexpr int64_t kWindowNs = 200'000'000;        // auto: the window the switch rate is measured over
constexpr double kBusySwitchesPerSec = 150;       // auto: above this the machine counts as busy
constexpr int64_t kFirstProbeNs = 1'000'000'000;  // auto: spin again after 1 s asleep, doubling
constexpr int64_t kLastProbeNs = 16'000'000'000;  // ... up to 16 s

thread_local bool t_in_region = false;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

void sleep_while_equal(std::atomic<uint32_t>& word, uint32_t value) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
#else
  word.wait(value);
#endif
}

void wake_all(std::atomic<uint32_t>& word) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  word.notify_all();
#endif
}

// Waits until done(word) holds: spins for up to spin_ns, then sleeps.
template <class Done>
void wait_for(std::atomic<uint32_t>& word, std::atomic<int>& sleepers, int64_t spin_ns, Done done) {
  if (spin_ns > 0) {
    const int64_t t0 = now_ns();
    do {
      for (int k = 0; k < 64; ++k) {
        if (done(word.load(std::memory_order_acquire))) return;
        cpu_relax();
      }
    } while (now_ns() - t0 < spin_ns);
  }
  for (;;) {
    uint32_t v = word.load(std::memory_order_acquire);
    if (done(v)) return;
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    v = word.load(std::memory_order_seq_cst);
    if (!done(v)) sleep_while_equal(word, v);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void notify(std::atomic<uint32_t>& word, std::atomic<int>& sleepers) {
  if (sleepers.load(std::memory_order_seq_cst) > 0) wake_all(word);
}

int default_threads() {
  if (const char* v = std::getenv("OMP_NUM_THREADS")) {  // the variable users and our scripts already set
    const int n = std::atoi(v);
    if (n >= 1) return n;
  }
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

enum class Policy { automatic, spin, passive };

Policy policy_from_env() {
  const char* v = std::getenv("SG_THREAD_WAIT");
  const std::string s = v ? v : "";
  if (s.empty() || s == "auto") return Policy::automatic;
  if (s == "spin") return Policy::spin;
  if (s == "passive") return Policy::passive;
  throw std::invalid_argument("SG_THREAD_WAIT='" + s + "': expected 'auto', 'spin' or 'passive' (or unset)");
}

int64_t involuntary_switches() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nivcsw;
}

class Pool {
 public:
  Pool() : threads_(default_threads()), policy_(policy_from_env()) {
    spinning_ = policy_ != Policy::passive;
    window_start_ = now_ns();
    switches_at_window_start_ = involuntary_switches();
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }
  void set_threads(int n) { threads_.store(std::max(1, n), std::memory_order_relaxed); }

  std::string policy_name() const {
    return policy_ == Policy::spin ? "spin" : policy_ == Policy::passive ? "passive" : "auto";
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void run(int want, detail::RegionFn fn, void* ctx) {
    const int team = std::min(want, threads());
    if (team <= 1 || t_in_region) return fn(ctx, 0, 1);
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return fn(ctx, 0, 1);  // another thread is running a region
    adapt();
    while ((int)workers_.size() < team - 1) {
      const int tid = (int)workers_.size() + 1;
      const uint32_t seen = generation_.load(std::memory_order_relaxed);
      workers_.emplace_back([this, tid, seen] { work(tid, seen); });
      workers_.back().detach();
    }
    fn_ = fn, ctx_ = ctx, team_ = team, error_ = nullptr;
    pending_.store((uint32_t)workers_.size(), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    notify(generation_, worker_sleepers_);

    t_in_region = true;
    try {
      fn(ctx, 0, team);
    } catch (...) {
      keep_error(std::current_exception());
    }
    t_in_region = false;
    wait_for(pending_, caller_sleepers_, spin_ns(), [](uint32_t v) { return v == 0; });
    ++stats_.regions;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void work(int tid, uint32_t seen) {
    for (;;) {
      wait_for(generation_, worker_sleepers_, spin_ns(), [seen](uint32_t v) { return v != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (tid < team_) {
        t_in_region = true;
        try {
          fn_(ctx_, tid, team_);
        } catch (...) {
          keep_error(std::current_exception());
        }
        t_in_region = false;
      }
      if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1) notify(pending_, caller_sleepers_);
    }
  }

  void keep_error(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_) error_ = e;
  }

  int64_t spin_ns() const { return spinning_.load(std::memory_order_relaxed) ? kSpinNs : 0; }

  // Policy::automatic: once per window, from the caller's thread, decide spin or sleep.
  void adapt() {
    if (policy_ != Policy::automatic) return;
    const int64_t now = now_ns();
    if (spinning_ && now - window_start_ >= kWindowNs) {
      const int64_t switches = involuntary_switches();
      const double rate = double(switches - switches_at_window_start_) / (double(now - window_start_) * 1e-9);
      if (rate > kBusySwitchesPerSec) {
        spinning_ = false;
        probe_at_ = now + probe_after_;
        probe_after_ = std::min(2 * probe_after_, kLastProbeNs);
        ++stats_.switches_to_passive;
      } else {
        probe_after_ = kFirstProbeNs;
      }
      window_start_ = now, switches_at_window_start_ = switches;
    } else if (!spinning_ && now >= probe_at_) {  // the machine may have become quiet: try spinning again
      spinning_ = true;
      window_start_ = now, switches_at_window_start_ = involuntary_switches();
    }
  }

  std::atomic<int> threads_;
  const Policy policy_;
  std::mutex mu_;  // held by the thread running a region; guards everything below but the atomics
  std::vector<std::thread> workers_;
  detail::RegionFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int team_ = 1;
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> pending_{0};
  std::atomic<int> worker_sleepers_{0}, caller_sleepers_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::atomic<bool> spinning_{true};
  int64_t window_start_ = 0, switches_at_window_start_ = 0;
  int64_t probe_at_ = 0, probe_after_ = kFirstProbeNs;
  PoolStats stats_;
};

// The process's pool, made on first use and never destroyed (its detached workers sleep until
// the process ends). A child of fork() has none of its parent's workers (and may have copied
// `mu_` locked): its first region makes a fresh pool.
std::atomic<Pool*> g_pool{nullptr};
std::atomic<bool> g_forked{false};

Pool& pool() {
  static Pool* first = [] {
    pthread_atfork(nullptr, nullptr, [] { g_forked.store(true); });
    Pool* p = new Pool();
    g_pool.store(p);
    return p;
  }();
  (void)first;
  if (g_forked.load(std::memory_order_relaxed)) {  // in a child of fork(): one thread, so no race here
    g_forked.store(false);
    const int threads = g_pool.load()->threads();
    g_pool.store(new Pool());  // the parent's copy is left as it is (its mutex may be held)
    g_pool.load()->set_threads(threads);
  }
  return *g_pool.load(std::memory_order_relaxed);
}

}  // namespace

int num_threads() { return pool().threads(); }
void set_num_threads(int n) { pool().set_threads(n); }
bool in_parallel() { return t_in_region; }
std::string wait_policy() { return pool().policy_name(); }
PoolStats pool_stats() { return pool().stats(); }

namespace detail {
void run_region(int want, RegionFn fn, void* ctx) { pool().run(want, fn, ctx); }
}  // namespace detail

}  // namespace sg::kernels::cpu
