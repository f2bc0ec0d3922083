# rcgc_target_defaults(<target>): warnings, -Werror and sanitizers for one target of this
# project. Everything is applied per target (PRIVATE), never through CMAKE_C_FLAGS, so a
# parent project that adds rcgc is not affected. Call it on every target that compiles
# rcgc code: the libraries, tests, benchmarks and examples.
include_guard(GLOBAL)
include(CheckCCompilerFlag)
include(CheckCSourceCompiles)

# Warnings, probed once (libuv's check_c_compiler_flag pattern). -Wconversion (which in
# C includes -Wsign-conversion) is kept clean from the first commit, as Lua and Mongoose
# do: fix a warning with an explicit cast that states the intended range.
set(_rcgc_warning_candidates
    -Wall
    -Wextra
    -Wpedantic
    -Wshadow
    -Wstrict-prototypes
    -Wmissing-prototypes
    -Wformat=2
    -Wconversion)
set(RCGC_WARNING_FLAGS "")
foreach(_flag IN LISTS _rcgc_warning_candidates)
    string(MAKE_C_IDENTIFIER "RCGC_HAVE${_flag}" _var)
    check_c_compiler_flag(${_flag} ${_var})
    if(${_var})
        list(APPEND RCGC_WARNING_FLAGS ${_flag})
    endif()
endforeach()

# Sanitizers: "address,undefined" (or either alone) or "thread"; TSan cannot be
# combined with ASan.
set(RCGC_SANITIZE_FLAGS "")
if(RCGC_SANITIZE)
    if(NOT RCGC_SANITIZE MATCHES "^(address|undefined|address,undefined|undefined,address|thread)$")
        message(FATAL_ERROR "RCGC_SANITIZE='${RCGC_SANITIZE}': use '', 'address,undefined' "
                            "or 'thread'")
    endif()
    set(RCGC_SANITIZE_FLAGS
        -fsanitize=${RCGC_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
    set(CMAKE_REQUIRED_FLAGS "-fsanitize=${RCGC_SANITIZE}")
    set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=${RCGC_SANITIZE}")
    string(MAKE_C_IDENTIFIER "RCGC_SANITIZE_WORKS_${RCGC_SANITIZE}" _var)
    check_c_source_compiles("int main(void) { return 0; }" ${_var})
    unset(CMAKE_REQUIRED_FLAGS)
    unset(CMAKE_REQUIRED_LINK_OPTIONS)
    if(NOT ${_var})
        message(FATAL_ERROR "RCGC_SANITIZE='${RCGC_SANITIZE}': ${CMAKE_C_COMPILER} cannot "
                            "compile and link with -fsanitize=${RCGC_SANITIZE}")
    endif()
endif()

function(rcgc_target_defaults target)
    target_compile_options(${target} PRIVATE ${RCGC_WARNING_FLAGS}
                                             $<$<BOOL:${RCGC_WERROR}>:-Werror>)
    if(RCGC_SANITIZE_FLAGS)
        target_compile_options(${target} PRIVATE ${RCGC_SANITIZE_FLAGS})
        get_target_property(_type ${target} TYPE)
        if(NOT _type STREQUAL "OBJECT_LIBRARY" AND NOT _type STREQUAL "STATIC_LIBRARY")
            target_link_options(${target} PRIVATE -fsanitize=${RCGC_SANITIZE})
        endif()
    endif()
endfunction()
