# Third-party dependencies, all from registries (Debian / PyPI), none vendored.
find_package(Threads REQUIRED)

# Header-only libraries: their CMake package where there is one; when cross-compiling (the host's
# package would put the host's /usr/include on the target compiler's path), or where there is
# none, the header alone, found under CMAKE_FIND_ROOT_PATH / the prefix path.
function(th_header_only target header hint)
  if(NOT TARGET ${target})
    find_path(_th_${hint}_dir ${header} REQUIRED)
    add_library(${target} INTERFACE IMPORTED)
    target_include_directories(${target} SYSTEM INTERFACE "${_th_${hint}_dir}")
    message(STATUS "${target}: header ${header} in ${_th_${hint}_dir}")
  endif()
endfunction()

if(NOT CMAKE_CROSSCOMPILING)
  find_package(nlohmann_json 3.2 QUIET)   # Debian: nlohmann-json3-dev
endif()
th_header_only(nlohmann_json::nlohmann_json nlohmann/json.hpp nlohmann)

if(TALKINGHEAD_BUILD_TESTS)
  if(NOT CMAKE_CROSSCOMPILING)
    find_package(doctest QUIET)            # Debian: doctest-dev
  endif()
  th_header_only(doctest::doctest doctest/doctest.h doctest)
endif()

if(TALKINGHEAD_BUILD_PYTHON)  # the tests need no Python (they read contract/)
  find_package(Python3 COMPONENTS Interpreter Development.Module REQUIRED)
endif()

if(TALKINGHEAD_BUILD_PYTHON)
  if(NOT pybind11_DIR)
    execute_process(COMMAND "${Python3_EXECUTABLE}" -m pybind11 --cmakedir
                    OUTPUT_VARIABLE _pybind11_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
    if(_rc EQUAL 0)
      set(pybind11_DIR "${_pybind11_dir}")
    endif()
  endif()
  find_package(pybind11 CONFIG REQUIRED)   # PyPI: pybind11
endif()
