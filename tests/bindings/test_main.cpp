// doctest main with a --fixtures=DIR option (the folder written by tests/bindings/fixtures.py).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "test_support.h"

std::string g_fixtures;

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--fixtures=", 11) == 0) g_fixtures = argv[i] + 11;
  }
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
