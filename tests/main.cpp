// main() of sg_tests.
#include "catch_main.h"

int main(int argc, char** argv) { return sgtest::catch_main(argc, argv); }
