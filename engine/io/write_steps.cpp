#include "engine/io/write_steps.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace sg::io {

namespace {
struct Hook {
  bool trace = false;
  long long kill_at = -1;
  Hook() {
    const char* t = std::getenv("SG_WRITE_STEP_TRACE");
    trace = t != nullptr && *t != 0 && *t != '0';
    if (const char* k = std::getenv("SG_WRITE_STEP_KILL")) kill_at = std::atoll(k);
  }
};
std::atomic<long long> g_steps{0};
}  // namespace

void write_step(const char* what, const std::string& path) {
  static const Hook hook;
  if (!hook.trace && hook.kill_at < 0) return;
  const long long n = ++g_steps;
  if (hook.trace) std::fprintf(stderr, "sg-write-step %lld %s %s\n", n, what, path.c_str());
  if (n == hook.kill_at) {
    std::fprintf(stderr, "sg-write-step %lld: killed by SG_WRITE_STEP_KILL after %s %s\n", n, what, path.c_str());
    ::_exit(86);
  }
}

}  // namespace sg::io
