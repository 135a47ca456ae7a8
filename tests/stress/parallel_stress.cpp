// The CPU thread pool (kernels/cpu/parallel.h) under stress, for ThreadSanitizer (scripts/
// run-tests.sh stage 4 runs it in build-tsan, once per SG_THREAD_WAIT policy): thousands of
// regions of changing sizes, exceptions from every thread, and two threads starting regions
// at once (one of them then runs alone). Exits non-zero on a wrong result; TSan reports any
// data race in the pool's hand-off (its atomics and futexes) and halts.
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/parallel.h"

using namespace sg::kernels::cpu;

int main() {
  set_num_threads(3);
  long bad = 0;
  for (int rep = 0; rep < 2000; ++rep) {
    std::vector<int> v(1000 + rep % 77, 0);
    parallel_for((int64_t)v.size(), true, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) v[i] += 1;
    });
    for (int x : v) bad += x != 1;
    try {
      parallel_region(3, [&](int tid, int) {
        if (tid == rep % 3) throw std::runtime_error("thrown on purpose");
      });
      bad++;  // the exception did not reach the caller
    } catch (const std::runtime_error&) {
    }
  }
  std::vector<long> sums(2, 0);
  auto caller = [&](int k) {
    for (int rep = 0; rep < 500; ++rep) {
      std::vector<long> v(5000);
      parallel_for(5000, true, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) v[i] = i;
      });
      for (long x : v) sums[k] += x;
    }
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join(), b.join();
  for (long s : sums) bad += s != 500L * 4999 * 5000 / 2;
  std::printf("parallel_stress: SG_THREAD_WAIT %s, %ld wrong results, %ld regions on more than one thread\n",
              wait_policy().c_str(), bad, (long)pool_stats().regions);
  return bad != 0;
}
