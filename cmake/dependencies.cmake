# Third-party dependencies, all from registries (Debian / PyPI), none vendored.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)  # Debian: nlohmann-json3-dev

if(TALKINGHEAD_BUILD_TESTS)
  find_package(doctest REQUIRED)           # Debian: doctest-dev
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
