# Install rules: headers under include/rcgc, librcgc.so + librcgc.a, the CMake package
# (find_package(rcgc CONFIG) -> rcgc::gc, rcgc::gc_static) and rcgc.pc; with the
# inspection server, also librcgc-inspect.so + .a (rcgc::inspect, rcgc::inspect_static),
# rcgc/inspect.h and rcgc-inspect.pc.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(RCGC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/rcgc
    CACHE STRING "Where rcgcConfig.cmake is installed, relative to the prefix")
mark_as_advanced(RCGC_INSTALL_CMAKEDIR)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/libgc/include/rcgc
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT rcgc_development
        FILES_MATCHING PATTERN "*.h")
install(FILES ${RCGC_GENERATED_INCLUDE_DIR}/rcgc/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rcgc
        COMPONENT rcgc_development)

set(_rcgc_install_targets rcgc_gc rcgc_gc_static)
if(TARGET rcgc_inspect)
    list(APPEND _rcgc_install_targets rcgc_inspect rcgc_inspect_static)
    install(FILES ${PROJECT_SOURCE_DIR}/inspectd/include/rcgc/inspect.h
            DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rcgc
            COMPONENT rcgc_development)
endif()

install(TARGETS ${_rcgc_install_targets}
        EXPORT rcgcTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
                COMPONENT rcgc_runtime
                NAMELINK_COMPONENT rcgc_development
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT rcgc_development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT rcgc_runtime)

install(EXPORT rcgcTargets
        NAMESPACE rcgc::
        DESTINATION ${RCGC_INSTALL_CMAKEDIR}
        COMPONENT rcgc_development)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/rcgcConfig.cmake.in
    ${PROJECT_BINARY_DIR}/rcgcConfig.cmake
    INSTALL_DESTINATION ${RCGC_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rcgcConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rcgcConfig.cmake
              ${PROJECT_BINARY_DIR}/rcgcConfigVersion.cmake
        DESTINATION ${RCGC_INSTALL_CMAKEDIR}
        COMPONENT rcgc_development)

# rcgc_install_pc(<template> <name> <variable>...): installs <name>.pc, configured from
# <template> (@ONLY) with the paths of the install prefix and the given variables' values.
# The paths are computed when installing, not when configuring, so
# `cmake --install <build> --prefix <dir>` writes the paths of <dir>. An absolute
# CMAKE_INSTALL_LIBDIR or INCLUDEDIR is kept as it is (mimalloc's JoinPaths rule).
function(rcgc_install_pc template name)
    set(_values "")
    foreach(_v IN LISTS ARGN)
        string(APPEND _values "    set(${_v} \"${${_v}}\")\n")
    endforeach()
    install(CODE "
    set(RCGC_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(RCGC_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(RCGC_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    foreach(_d IN ITEMS RCGC_PC_LIBDIR RCGC_PC_INCLUDEDIR)
        if(NOT IS_ABSOLUTE \"\${\${_d}}\")
            set(\${_d} \"\\\${prefix}/\${\${_d}}\")
        endif()
    endforeach()
${_values}    configure_file(\"${template}\"
                   \"${PROJECT_BINARY_DIR}/pkgconfig-install/${name}.pc\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\"
         TYPE FILE FILES \"${PROJECT_BINARY_DIR}/pkgconfig-install/${name}.pc\")
" COMPONENT rcgc_development)
endfunction()

set(RCGC_PC_LIBS_PRIVATE "${CMAKE_THREAD_LIBS_INIT}")
if(RCGC_HAVE_LIBM)
    string(APPEND RCGC_PC_LIBS_PRIVATE " -lm")
endif()
if(RCGC_HAVE_LIBDW)
    string(APPEND RCGC_PC_LIBS_PRIVATE " -ldw")
endif()
string(STRIP "${RCGC_PC_LIBS_PRIVATE}" RCGC_PC_LIBS_PRIVATE)
rcgc_install_pc(${PROJECT_SOURCE_DIR}/cmake/rcgc.pc.in rcgc
                PROJECT_VERSION PROJECT_DESCRIPTION RCGC_PC_LIBS_PRIVATE)

# rcgc-inspect.pc. libmicrohttpd and jansson only matter to a static link: they go to
# Libs.private (Requires.private would make --cflags need their .pc files).
if(TARGET rcgc_inspect)
    set(RCGC_INSPECT_PC_LIBS_PRIVATE "-lmicrohttpd -ljansson ${RCGC_PC_LIBS_PRIVATE}")
    string(STRIP "${RCGC_INSPECT_PC_LIBS_PRIVATE}" RCGC_INSPECT_PC_LIBS_PRIVATE)
    rcgc_install_pc(${PROJECT_SOURCE_DIR}/inspectd/rcgc-inspect.pc.in rcgc-inspect
                    PROJECT_VERSION RCGC_INSPECT_PC_LIBS_PRIVATE)
endif()
