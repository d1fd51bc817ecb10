# Cross-compiling for Windows x64 with Debian's mingw-w64 (g++-mingw-w64-x86-64-posix: the POSIX
# thread model, which std::thread and std::mutex need). Used by bindings/build_windows.sh; ctest
# runs the Windows programs through Wine (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(TH_MINGW x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${TH_MINGW}-gcc-posix)
set(CMAKE_CXX_COMPILER ${TH_MINGW}-g++-posix)
set(CMAKE_RC_COMPILER ${TH_MINGW}-windres)
# Target headers and libraries from the mingw sysroot and TALKINGHEAD_WINDOWS_DEPS (header-only
# dependencies staged by build_windows.sh), never the host's /usr/include.
set(CMAKE_FIND_ROOT_PATH /usr/${TH_MINGW} $ENV{TALKINGHEAD_WINDOWS_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
find_program(TH_WINE NAMES wine wine64)
if(TH_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TH_WINE})
endif()
