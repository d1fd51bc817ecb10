#include <cstdio>
#include <mutex>

#include "errors.h"

namespace th {
namespace {

struct Sink {
  std::mutex mutex;
  LogFn fn = nullptr;
  void* user = nullptr;
  LogLevel min_level = LogLevel::Warning;
};

Sink& sink() {
  static Sink s;
  return s;
}

}  // namespace

void set_log_callback(LogFn fn, void* user_data, LogLevel min_level) {
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.fn = fn;
  s.user = user_data;
  s.min_level = fn ? min_level : LogLevel::Warning;
}

void log(LogLevel level, const std::string& message) {
  Sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);  // callbacks never run concurrently
  if (level < s.min_level) return;
  if (s.fn) {
    s.fn(s.user, static_cast<int>(level), message.c_str());
  } else {
    static const char* names[] = {"debug", "info", "warning", "error"};
    std::fprintf(stderr, "talkinghead %s: %s\n", names[static_cast<int>(level)], message.c_str());
  }
}

}  // namespace th
