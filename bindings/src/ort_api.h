// The ONNX Runtime C++ API, initialised by hand (see ort_runtime.h). Internal.
#pragma once

#ifndef ORT_API_MANUAL_INIT
#define ORT_API_MANUAL_INIT
#endif
#include <onnxruntime_cxx_api.h>

namespace th {
// The process-wide environment; valid after ensure_ort() returned.
Ort::Env& ort_env();
}  // namespace th
