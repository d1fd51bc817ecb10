# ONNX Runtime headers only: the library is loaded at run time (dlopen + ORT_API_MANUAL_INIT, see
# docs/embedding.md), so nothing links against libonnxruntime and one build works with any
# ONNX Runtime >= the headers' version. bindings/build.sh fills third_party/onnxruntime/include.
find_path(ONNXRUNTIME_INCLUDE_DIR onnxruntime_cxx_api.h
  HINTS
    "${ONNXRUNTIME_ROOT}/include"
    "${ONNXRUNTIME_ROOT}/include/onnxruntime"
    "${ONNXRUNTIME_ROOT}/include/onnxruntime/core/session"
    "${PROJECT_SOURCE_DIR}/third_party/onnxruntime/include"
  NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
if(NOT ONNXRUNTIME_INCLUDE_DIR)
  find_path(ONNXRUNTIME_INCLUDE_DIR onnxruntime_cxx_api.h PATH_SUFFIXES onnxruntime onnxruntime/core/session)
endif()
if(NOT ONNXRUNTIME_INCLUDE_DIR)
  message(FATAL_ERROR
    "ONNX Runtime headers not found. Run bindings/build.sh (it fetches them offline from the npm "
    "registry), or set ONNXRUNTIME_ROOT to an ONNX Runtime distribution (with include/).")
endif()
add_library(th_onnxruntime_headers INTERFACE)
target_include_directories(th_onnxruntime_headers SYSTEM INTERFACE "${ONNXRUNTIME_INCLUDE_DIR}")
message(STATUS "ONNX Runtime headers: ${ONNXRUNTIME_INCLUDE_DIR}")
