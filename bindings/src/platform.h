// The platform layer: what the core needs from the operating system, for POSIX (Linux, macOS) and
// Windows, and nothing else. Every path in and out is UTF-8 with '/' separators; everything
// #ifdef _WIN32 in the core lives in platform.cpp.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace th {
namespace platform {

// Opens a shared library for the life of the process (never unloaded while in use). Returns null
// and says why in `why` when it cannot.
void* open_library(const std::string& path, std::string* why);
void* library_symbol(void* library, const char* name);
void close_library(void* library);

// The folder of the module (shared library or executable) holding this code, or "".
std::string module_directory();
// ONNX Runtime's library file names, in the order the loader tries them on this platform.
std::vector<std::string> ort_library_names();
// How to point the loader at ONNX Runtime on this platform (for error messages).
const char* ort_library_hint();

// Sets an environment variable of this process unless it is already set.
void set_env_default(const char* name, const char* value);

// fopen with a UTF-8 path (Windows' fopen takes the ANSI code page).
std::FILE* open_file(const std::string& path, const char* mode);

// The canonical absolute path of an existing file or folder (symlinks resolved, '/' separators),
// or "" with `missing` true when it does not exist, false when it cannot be resolved for another
// reason (then `why` says it).
std::string canonical_path(const std::string& path, bool* missing, std::string* why);
bool is_regular_file(const std::string& path);
bool is_directory(const std::string& path);
// Size in bytes of a regular file, or -1.
long long file_size(const std::string& path);

// A path as ONNX Runtime's session constructor takes it (ORTCHAR_T: wchar_t on Windows).
#ifdef _WIN32
using NativePath = std::wstring;
#else
using NativePath = std::string;
#endif
NativePath native_path(const std::string& utf8);

}  // namespace platform
}  // namespace th
