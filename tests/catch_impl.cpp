// Catch2's implementation (its single header with CATCH_CONFIG_RUNNER), compiled once for both
// test programs (sg_tests, sg_cuda_tests and the planted-bug copies of the latter), and
// sgtest::catch_main, which their main() functions call. tests/CMakeLists.txt compiles this
// file without optimization and without sanitizers: it is the test framework, not code under
// test, and compiled once per program under ASan + UBSan it was the slowest step of the
// sanitizer build (about 70 s each).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_main.h"

int sgtest::catch_main(int argc, char** argv, int (*before_tests)(bool listing)) {
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  const Catch::ConfigData& cd = session.configData();
  const bool listing = cd.listTests || cd.listTestNamesOnly || cd.listTags || cd.listReporters || cd.showHelp;
  if (before_tests)
    if (int rc = before_tests(listing); rc >= 0) return rc;
  return session.run();
}
