// See omp_wait_policy.h.
#include "train/omp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace sg::train {

void default_omp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed: this process keeps libgomp's default, so say so
}

std::string omp_wait_policy() {
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  if (spin != nullptr) return std::string("GOMP_SPINCOUNT=") + spin;
  const char* v = std::getenv("OMP_WAIT_POLICY");
  return v != nullptr ? v : "unset (libgomp's default: spin a few ms, then sleep)";
}

}  // namespace sg::train
