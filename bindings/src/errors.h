// Errors and logging of the core. Every failure is a th::Error carrying a code that the C ABI maps
// one to one to th_status, and a message that says what failed and what to do.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace th {

enum class Code {
  InvalidArgument = 1,
  SizeMismatch = 2,
  NotFound = 3,
  ModelPackage = 4,
  Runtime = 5,
  Provider = 6,
  OutOfMemory = 7,
  Internal = 8,
};

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string& message, std::string key = "")
      : std::runtime_error(message), code_(code), key_(std::move(key)) {}
  Code code() const noexcept { return code_; }
  // For a manifest that breaks the contract: the offending key's path ("landmarks.crop.offset_y"),
  // the stable code Python's ModelPackageError.key gives too (contract/manifests); "" otherwise.
  const std::string& key() const noexcept { return key_; }

 private:
  Code code_;
  std::string key_;
};

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3 };

using LogFn = void (*)(void* user_data, int level, const char* message);

// Route log messages; fn == nullptr restores the default (warnings and errors to stderr).
void set_log_callback(LogFn fn, void* user_data, LogLevel min_level);
void log(LogLevel level, const std::string& message);

}  // namespace th
