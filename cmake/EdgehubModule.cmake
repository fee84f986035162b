# Helpers that give every module the same shape: a static library edgehub_<name>
# (alias edgehub::<name>) with public headers in include/edgehub/<name>/, and tests in
# test/unit/<name>/ built as one GoogleTest program per module.

function(edgehub_warnings target)
  # Designated initialisers that leave defaulted members out are intended. GCC 12 reports
  # false -Wrestrict positives inside libstdc++'s string concatenation (GCC bug 105651); clang
  # (the fuzz build) has no such warning and refuses the unknown option under -Werror.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror
    -Wno-missing-field-initializers $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
endfunction()

# edgehub_library(<name> SOURCES ... [DEPS ...])
function(edgehub_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(edgehub_${name} STATIC ${ARG_SOURCES})
  add_library(edgehub::${name} ALIAS edgehub_${name})
  target_include_directories(edgehub_${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/generated
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(edgehub_${name} PUBLIC ${ARG_DEPS})
  edgehub_warnings(edgehub_${name})
endfunction()

# edgehub_test(<name> SOURCES ... [DEPS ...] [LABELS ...])
# Test data lives in test/data; tests find it through EDGEHUB_TEST_DATA.
function(edgehub_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    EDGEHUB_TEST_DATA="${PROJECT_SOURCE_DIR}/test/data"
    EDGEHUB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    EDGEHUB_BINARY_DIR="${PROJECT_BINARY_DIR}")
  edgehub_warnings(${name})
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
