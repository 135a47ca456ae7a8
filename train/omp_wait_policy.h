// The programs' OpenMP wait policy: passive unless the user sets OMP_WAIT_POLICY.
//
// libgomp's default lets an idle thread spin (about 300,000 iterations, a few ms) before it
// sleeps, so a thread that finishes its share of a parallel loop keeps its core busy until
// the next loop starts. On a quiet machine that saves a wake-up per loop; on a shared one the
// spinning threads take the cores the working threads need, and training became about 5x
// slower (375-609 s/kimg spinning against 73-91 s/kimg passive under the same load; issue 9).
// Passive threads sleep at once. What that costs on a quiet machine: docs/training.md,
// "Threads".
//
// libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main() runs, so setting the
// variable from main() is too late for this process. default_omp_wait_policy() therefore
// sets it and re-executes the program (/proc/self/exe, same arguments) — once: the new
// process finds the variable set. A user's OMP_WAIT_POLICY, or GOMP_SPINCOUNT (which libgomp
// lets override the policy), is left alone and nothing is re-executed.
#pragma once
#include <string>

namespace sg::train {

// Call first thing in main(), before any OpenMP use. Returns only if nothing was re-executed
// (the policy was already set, or exec failed: then libgomp's default stays, as reported by
// omp_wait_policy()).
void default_omp_wait_policy(char** argv);

// The policy this process runs with, for logs: "passive", "active", "GOMP_SPINCOUNT=N" or
// "unset (...)".
std::string omp_wait_policy();

}  // namespace sg::train
