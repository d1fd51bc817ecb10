# Every build option of talkinghead, in one place.
option(TALKINGHEAD_BUILD_SHARED "Build libtalkinghead.so (the C ABI for engines)" ON)
option(TALKINGHEAD_BUILD_STATIC "Build libtalkinghead.a" ON)
option(TALKINGHEAD_BUILD_PYTHON "Build the pybind11 module talkinghead._native" ON)
option(TALKINGHEAD_BUILD_TESTS "Build the C++ tests (ctest)" ON)
option(TALKINGHEAD_BUILD_EXAMPLES "Build the C example" ON)
option(TALKINGHEAD_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH
    "An ONNX Runtime distribution (its include/ is used; the library is loaded at run time)")
set(TALKINGHEAD_TEST_ORT_LIBRARY "" CACHE FILEPATH
    "libonnxruntime the tests load (TALKINGHEAD_ORT_LIBRARY); empty: the library's own search")
set(TALKINGHEAD_TEST_ORT_LIBRARY_OLD "" CACHE FILEPATH
    "A second libonnxruntime (another release) the C example also runs against; optional")
