#include "platform.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#ifdef _WIN32
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>
#else
#  include <dlfcn.h>
#endif

namespace fs = std::filesystem;

namespace th {
namespace platform {

#ifdef _WIN32

namespace {

std::wstring widen(const std::string& s) {
  if (s.empty()) return std::wstring();
  const int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

std::string last_error_text() {
  const DWORD code = GetLastError();
  char* text = nullptr;
  FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                 code, 0, reinterpret_cast<char*>(&text), 0, nullptr);
  std::string out = text ? text : "";
  if (text) LocalFree(text);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return "error " + std::to_string(code) + (out.empty() ? "" : ": " + out);
}

}  // namespace

void* open_library(const std::string& path, std::string* why) {
  // A path with a folder: that file, and its own folder first for its dependencies.
  const bool has_folder = path.find_first_of("/\\") != std::string::npos;
  std::wstring w = widen(path);
  for (auto& c : w) c = c == L'/' ? L'\\' : c;
  HMODULE h = has_folder ? LoadLibraryExW(w.c_str(), nullptr, LOAD_WITH_ALTERED_SEARCH_PATH) : LoadLibraryW(w.c_str());
  if (!h && why) *why = "LoadLibrary failed (" + last_error_text() + ")";
  return reinterpret_cast<void*>(h);
}

void* library_symbol(void* library, const char* name) {
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(library), name));
}

void close_library(void* library) { FreeLibrary(reinterpret_cast<HMODULE>(library)); }

std::string module_directory() {
  HMODULE self = nullptr;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          reinterpret_cast<LPCWSTR>(&module_directory), &self)) {
    return "";
  }
  std::wstring buf(32768, L'\0');
  const DWORD n = GetModuleFileNameW(self, &buf[0], static_cast<DWORD>(buf.size()));
  if (n == 0 || n >= buf.size()) return "";
  buf.resize(n);
  return fs::path(buf).parent_path().generic_u8string();
}

std::vector<std::string> ort_library_names() { return {"onnxruntime.dll"}; }

const char* ort_library_hint() {
  return "Set th_model_config.ort_library or TALKINGHEAD_ORT_LIBRARY to an onnxruntime.dll, or put one next to "
         "talkinghead.dll or the program (the onnxruntime win_amd64 wheel ships one as onnxruntime/capi/onnxruntime.dll)";
}

void set_env_default(const char* name, const char* value) {
  if (!std::getenv(name)) _putenv_s(name, value);
}

std::FILE* open_file(const std::string& path, const char* mode) {
  return _wfopen(widen(path).c_str(), widen(mode).c_str());
}

NativePath native_path(const std::string& utf8) { return widen(utf8); }

#else  // POSIX

void* open_library(const std::string& path, std::string* why) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h && why) {
    const char* e = dlerror();
    *why = e ? e : "dlopen failed";
  }
  return h;
}

void* library_symbol(void* library, const char* name) { return dlsym(library, name); }

void close_library(void* library) { dlclose(library); }

std::string module_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&module_directory), &info) && info.dli_fname) {
    return fs::path(info.dli_fname).parent_path().generic_u8string();
  }
  return "";
}

std::vector<std::string> ort_library_names() {
#  ifdef __APPLE__
  return {"libonnxruntime.dylib"};
#  else
  return {"libonnxruntime.so", "libonnxruntime.so.1"};
#  endif
}

const char* ort_library_hint() {
  return "Set th_model_config.ort_library or TALKINGHEAD_ORT_LIBRARY to a libonnxruntime.so, put one next to "
         "libtalkinghead.so, or on the library search path (LD_LIBRARY_PATH). The onnxruntime pip wheel ships one as "
         "onnxruntime/capi/libonnxruntime.so.1.*";
}

void set_env_default(const char* name, const char* value) { setenv(name, value, 0); }

std::FILE* open_file(const std::string& path, const char* mode) { return std::fopen(path.c_str(), mode); }

NativePath native_path(const std::string& utf8) { return utf8; }

#endif

std::string canonical_path(const std::string& path, bool* missing, std::string* why) {
  std::error_code ec;
  const fs::path p = fs::canonical(fs::u8path(path), ec);
  if (ec) {
    const bool gone = ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory;
    if (missing) *missing = gone;
    if (why) *why = ec.message();
    return "";
  }
  if (missing) *missing = false;
  return p.generic_u8string();
}

bool is_regular_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(fs::u8path(path), ec);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(fs::u8path(path), ec);
}

long long file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(fs::u8path(path), ec);
  return ec ? -1 : static_cast<long long>(n);
}

}  // namespace platform
}  // namespace th
