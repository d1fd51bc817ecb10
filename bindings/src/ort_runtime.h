// ONNX Runtime, loaded at run time (platform::open_library + ORT_API_MANUAL_INIT): one build of talkinghead works
// with any ONNX Runtime library whose API version is >= the headers' (1.29), CPU or GPU build.
// Only ort_runtime.cpp and model.cpp include the ONNX Runtime headers.
#pragma once

#include <string>

namespace th {

struct OrtInfo {
  std::string path;     // the library file loaded
  std::string version;  // its GetVersionString()
};

// Load ONNX Runtime once per process (thread-safe) and create the process-wide Ort::Env.
// `requested`: a library path, or "" for the search order in talkinghead.h. Throws Runtime.
const OrtInfo& ensure_ort(const std::string& requested);

// A fallback library path tried before the system search path (the Python module passes the
// onnxruntime wheel's library here).
void set_default_ort_library(const std::string& path);

// The loaded library, or nullptr when none is loaded yet.
const OrtInfo* loaded_ort();

}  // namespace th
