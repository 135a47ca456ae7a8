// See engine/device.h ("CPU threads").
#include <stdexcept>
#include <string>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/cpu/parallel.h"

namespace sg {

int cpu_threads() { return kernels::cpu::num_threads(); }

void set_cpu_threads(int n) {
  if (n < 1) throw Error("set_cpu_threads: " + std::to_string(n) + " threads; expected at least 1");
  kernels::cpu::set_num_threads(n);
}

CpuThreadStats cpu_thread_stats() {
  const kernels::cpu::PoolStats p = kernels::cpu::pool_stats();
  return {p.regions, p.switches_to_passive};
}

std::string cpu_thread_wait() {
  try {
    return kernels::cpu::wait_policy();
  } catch (const std::invalid_argument& e) {
    throw Error(e.what());
  }
}

}  // namespace sg
