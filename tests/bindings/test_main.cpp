// doctest main with a --contract=DIR option (the repository's contract/: the conformance corpus).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "test_support.h"

std::string g_contract;

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--contract=", 11) == 0) g_contract = argv[i] + 11;
  }
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
