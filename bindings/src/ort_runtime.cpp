#include "ort_runtime.h"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "errors.h"
#include "ort_api.h"
#include "platform.h"

namespace th {
namespace {

std::mutex g_mutex;
std::string g_default_library;
std::unique_ptr<OrtInfo> g_info;
Ort::Env* g_env = nullptr;  // process lifetime: never destroyed (ORT must outlive every session)

void ORT_API_CALL ort_log(void*, OrtLoggingLevel severity, const char* category, const char*,
                          const char*, const char* message) {
  LogLevel level = severity >= ORT_LOGGING_LEVEL_ERROR ? LogLevel::Error
                   : severity == ORT_LOGGING_LEVEL_WARNING ? LogLevel::Warning
                   : severity == ORT_LOGGING_LEVEL_INFO    ? LogLevel::Info
                                                           : LogLevel::Debug;
  log(level, std::string("onnxruntime [") + (category ? category : "") + "] " + (message ? message : ""));
}

// Try one library; returns "" on success, else why it failed.
std::string try_load(const std::string& path) {
  std::string why;
  void* handle = platform::open_library(path, &why);
  if (!handle) return why;
  using GetApiBase = const OrtApiBase* (*)();
  auto get_base = reinterpret_cast<GetApiBase>(platform::library_symbol(handle, "OrtGetApiBase"));
  if (!get_base) {
    platform::close_library(handle);
    return path + " has no OrtGetApiBase: not an ONNX Runtime library";
  }
  const OrtApiBase* base = get_base();
  const char* version = base ? base->GetVersionString() : "?";
  const OrtApi* api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
  if (!api) {
    platform::close_library(handle);
    return path + " is ONNX Runtime " + version + ", older than this build needs (API version " +
           std::to_string(ORT_API_VERSION) + ", ONNX Runtime 1." + std::to_string(ORT_API_VERSION) + " or newer)";
  }
  Ort::InitApi(api);  // the handle stays open for the life of the process
  g_info.reset(new OrtInfo{path, version});
  return "";
}

}  // namespace

void set_default_ort_library(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_default_library = path;
}

const OrtInfo* loaded_ort() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_info.get();
}

const OrtInfo& ensure_ort(const std::string& requested) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_info) {
    if (!requested.empty() && requested != g_info->path) {
      log(LogLevel::Warning, "ONNX Runtime is already loaded from " + g_info->path + " (version " + g_info->version +
                                 "); ignoring the request for " + requested + " (one runtime per process)");
    }
    return *g_info;
  }
  // Recent official ORT builds write a device id under ~/.cache unless telemetry is off.
  platform::set_env_default("ORT_DISABLE_TELEMETRY", "1");
  std::vector<std::pair<std::string, bool>> candidates;  // path, explicit (no fall-through)
  const char* env = std::getenv("TALKINGHEAD_ORT_LIBRARY");
  if (!requested.empty()) {
    candidates.emplace_back(requested, true);
  } else if (env && *env) {
    candidates.emplace_back(env, true);
  } else {
    if (!g_default_library.empty()) candidates.emplace_back(g_default_library, false);
    const std::string dir = platform::module_directory();
    for (const auto& name : platform::ort_library_names()) {
      if (!dir.empty()) candidates.emplace_back(dir + "/" + name, false);
    }
    for (const auto& name : platform::ort_library_names()) candidates.emplace_back(name, false);
  }
  std::string errors;
  for (const auto& c : candidates) {
    std::string why = try_load(c.first);
    if (why.empty()) break;
    errors += "\n  " + c.first + ": " + why;
    if (c.second) break;
  }
  if (!g_info) {
    throw Error(Code::Runtime,
                "cannot load ONNX Runtime (>= 1." + std::to_string(ORT_API_VERSION) + ")." + errors + "\n" +
                    platform::ort_library_hint());
  }
  try {
    g_env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "talkinghead", ort_log, nullptr);
    g_env->DisableTelemetryEvents();
  } catch (const Ort::Exception& e) {
    g_info.reset();
    throw Error(Code::Runtime, std::string("ONNX Runtime failed to start: ") + e.what());
  }
  log(LogLevel::Info, "ONNX Runtime " + g_info->version + " loaded from " + g_info->path);
  return *g_info;
}

Ort::Env& ort_env() { return *g_env; }

}  // namespace th
