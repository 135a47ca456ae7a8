// The test programs' main(): Catch2's session (tests/catch_impl.cpp).
#pragma once

namespace sgtest {

// Parses the command line (a bad one: Catch2's exit code) and runs the selected tests. When
// given, before_tests(listing) runs first, listing being true when the command only lists
// tests, tags or reporters or shows the help; a result >= 0 ends the program with that exit
// code, instead of running the tests.
int catch_main(int argc, char** argv, int (*before_tests)(bool listing) = nullptr);

}  // namespace sgtest
