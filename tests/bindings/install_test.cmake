# ctest: `cmake --install` the build into a scratch prefix, then configure, build and run a
# consumer project that uses find_package(talkinghead) (shared and static).
set(prefix "${BUILD}/install-test/prefix")
set(cbuild "${BUILD}/install-test/consumer")
file(REMOVE_RECURSE "${BUILD}/install-test")
foreach(step
    "${CMAKE_COMMAND};--install;${BUILD};--prefix;${prefix}"
    "${CMAKE_COMMAND};-S;${SRC}/tests/bindings/consumer;-B;${cbuild};-DCMAKE_PREFIX_PATH=${prefix}"
    "${CMAKE_COMMAND};--build;${cbuild}"
    "${cbuild}/consumer_shared"
    "${cbuild}/consumer_static")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test step failed (${rc}): ${step}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endforeach()
