// libFuzzer targets of the C++ core's readers of untrusted bytes (issue 18), built three times by
// tests/fuzz/run.sh with -fsanitize=fuzzer,address,undefined and one of FUZZ_MANIFEST
// (th::parse_manifest), FUZZ_ONNX (th::read_onnx_header) or FUZZ_SHOT (the shot path); the targets
// themselves are in replay.h, which test_core also runs on every input found (tests/fuzz/crashes).
// A crash is anything but a th::Error: another exception, a sanitizer report, a timeout or OOM.
#include "errors.h"
#include "replay.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
#if defined(FUZZ_MANIFEST)
    th_fuzz::manifest(data, size);
#elif defined(FUZZ_ONNX)
    th_fuzz::onnx(data, size);
#elif defined(FUZZ_SHOT)
    th_fuzz::shot(data, size);
#else
#error "define FUZZ_MANIFEST, FUZZ_ONNX or FUZZ_SHOT"
#endif
  } catch (const th::Error&) {
  }
  return 0;
}
