// The CPU kernels' threads: one pool of workers, parallel regions on it, and how the workers
// wait between regions.
//
//   parallel_region(want, body):  body(tid, team) on `team` threads, the caller as tid 0;
//                                 returns when all have returned (a fork-join, as an OpenMP
//                                 `parallel` region)
//   parallel_for(n, parallel, body):  [0, n) cut into one contiguous chunk per thread,
//                                 body(begin, end) (OpenMP's `parallel for schedule(static)`)
// (Uneven tasks are handed out one at a time by an atomic counter inside a region: the conv
// kernels, kernels/cpu/conv.cpp.)
//
// Team size: num_threads() (default: the CPUs this process may run on, or OMP_NUM_THREADS;
// set_num_threads / the programs' --threads), at most `want`. A region started inside a
// region, or while another thread owns the pool, runs on the calling thread alone (team 1),
// as OpenMP does with nesting off. An exception thrown by body on any thread is rethrown
// by the caller once every thread has finished.
//
// Waiting. Between regions a worker first spins (checks a counter, `pause`), then sleeps
// on a futex; the caller waits for the workers' end of a region the same way. Spinning makes
// a region cost under a microsecond instead of the 50-75 us of waking a sleeping thread (on
// this project's VMs), and a training step runs about 450 regions; but a spinning thread
// holds a core, and on a shared machine the cores are needed by the threads doing the work
// (training became 1.4x-5x slower, docs/training.md "Threads"). So by default (SG_THREAD_WAIT
// unset or `auto`) the pool measures: it spins while nobody else wants the cores, and sleeps
// at once while the process is being preempted (involuntary context switches above
// kBusySwitchesPerSec over a 200 ms window: a quiet machine shows about 40 per second, two
// competing busy processes about 400). While sleeping it tries spinning again after 1 s,
// then 2, 4 ... 16 s while the machine stays busy. SG_THREAD_WAIT=spin or =passive fixes
// the policy. wait_policy() names the policy for logs.
//
// Benchmark: build/bench_omp_region (a region's cost, this pool against OpenMP).
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

namespace sg::kernels::cpu {

int num_threads();
void set_num_threads(int n);  // n >= 1
bool in_parallel();           // on a thread that is running a region's body

// SG_THREAD_WAIT as in effect: "auto", "spin" or "passive" (an invalid value throws
// std::invalid_argument naming the variable, from this or the first region).
std::string wait_policy();

// Counters since the start, for tests and benchmarks.
struct PoolStats {
  int64_t regions = 0;              // regions run on more than one thread
  int64_t switches_to_passive = 0;  // auto: times the pool found the machine busy
};
PoolStats pool_stats();

namespace detail {
using RegionFn = void (*)(void* ctx, int tid, int team);
void run_region(int want, RegionFn fn, void* ctx);
}  // namespace detail

template <class F>
void parallel_region(int want, F&& body) {
  detail::run_region(
      want, [](void* ctx, int tid, int team) { (*static_cast<std::remove_reference_t<F>*>(ctx))(tid, team); },
      (void*)&body);
}

template <class F>
void parallel_for(int64_t n, bool parallel, F&& body) {
  if (n <= 0) return;
  if (!parallel || n == 1) return body(int64_t(0), n);
  parallel_region(n < (int64_t)1 << 30 ? (int)n : 1 << 30, [&](int tid, int team) {
    const int64_t b = n * tid / team, e = n * (tid + 1) / team;
    if (b < e) body(b, e);
  });
}

}  // namespace sg::kernels::cpu
