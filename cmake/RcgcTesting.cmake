# Test helpers shared by every tests/<component>/ folder.
#
#   rcgc_add_unit_test(<component> <unit> <source> [SLOW] [THREADS] [STATIC]
#                      [LIBRARIES <lib>...])
#
# builds <source> into the executable test_<unit> (target test_<component>_<unit>),
# linked with rcgc_test_support (cmocka + rcgc::gc; with STATIC, rcgc_test_support_static:
# cmocka + rcgc::gc_static) and <lib>..., and registers it as
# CTest `<component>.<unit>` with LABELS unit (plus slow / threads) and a TIMEOUT of
# 300 s (900 s when SLOW).
include_guard(GLOBAL)

# Environment of every test: nothing the caller exported may change the collector's or
# the inspector's behaviour (RCGC_DEBUG, RCGC_THRESHOLD, RCGC_INSPECT_WEB_DIR are unset),
# and cmocka reports on stdout.
set(RCGC_TEST_ENVIRONMENT_MODIFICATION
    "RCGC_DEBUG=unset:"
    "RCGC_THRESHOLD=unset:"
    "RCGC_INSPECT_WEB_DIR=unset:"
    "CMOCKA_MESSAGE_OUTPUT=set:STDOUT")
if(RCGC_SANITIZE MATCHES "undefined")
    list(APPEND RCGC_TEST_ENVIRONMENT_MODIFICATION "UBSAN_OPTIONS=set:print_stacktrace=1")
endif()

function(rcgc_set_test_environment test)
    set_property(TEST ${test} APPEND PROPERTY
                 ENVIRONMENT_MODIFICATION ${RCGC_TEST_ENVIRONMENT_MODIFICATION})
endfunction()

function(rcgc_add_unit_test component unit source)
    cmake_parse_arguments(PARSE_ARGV 3 arg "SLOW;THREADS;STATIC" "" "LIBRARIES")
    set(target test_${component}_${unit})
    add_executable(${target} ${source})
    set_target_properties(${target} PROPERTIES OUTPUT_NAME test_${unit})
    set(support rcgc_test_support)
    if(arg_STATIC)
        set(support rcgc_test_support_static)
    endif()
    target_link_libraries(${target} PRIVATE ${support} ${arg_LIBRARIES})
    target_compile_definitions(${target} PRIVATE ${RCGC_CONFIG_DEFINITIONS})
    rcgc_target_defaults(${target})

    set(labels unit)
    set(timeout 300)
    if(arg_SLOW)
        list(APPEND labels slow)
        set(timeout 900)
    endif()
    if(arg_THREADS)
        list(APPEND labels threads)
    endif()
    add_test(NAME ${component}.${unit} COMMAND ${target})
    set_tests_properties(${component}.${unit} PROPERTIES LABELS "${labels}" TIMEOUT ${timeout})
    rcgc_set_test_environment(${component}.${unit})
endfunction()
