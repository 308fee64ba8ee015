# sparsec_add_model(): compile a sparsec model (.sdl) at build time.
#
# Shared by the sparsec source tree (included by the top-level
# CMakeLists.txt) and by the installed CMake package (included by
# SparsecConfig.cmake after find_package(Sparsec)), so both behave the same.
#
#   sparsec_add_model(<target> <file.sdl>
#                     [TARGET cpu|cuda]      # devices (default: cpu)
#                     [OPTIONS <arg>...])    # extra sparsec arguments
#
# Runs `sparsec <file.sdl> -o lib<target>.so --header=<target>.h
# --target=cpu[,cuda] [OPTIONS]`
# in the current binary directory and defines <target>, an imported shared
# library whose include directory holds <target>.h: link it with
# target_link_libraries(app PRIVATE <target>) and #include "<target>.h".
# The model is rebuilt when the .sdl file, the sparsec executable or the
# runtime it links changes. OPTIONS go to sparsec verbatim (e.g. -O2,
# --generic-cpu, --vl=8, --model=Name); -o, --header and --emit are set by
# the function and rejected. TARGET cuda (or cpu,cuda) builds a library
# that carries the CPU and the CUDA kernels: the app picks the device with
# <Model>_create_on (docs/cuda.md). The list SPARSEC_MODEL_OPTIONS (e.g.
# -DSPARSEC_MODEL_OPTIONS=--generic-cpu) is added to every model's flags.
#
# Which sparsec is used (set by the includer; the defaults are the targets of
# the installed package):
#   SPARSEC_MODEL_COMPILER  executable target of the compiler (Sparsec::sparsec)
#   SPARSEC_MODEL_RUNTIME   static runtime library target (Sparsec::runtime_static)
#   SPARSEC_MODEL_DEPENDS   further dependencies of every model (targets/files)
include_guard(GLOBAL)

function(sparsec_add_model target sdl)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "TARGET" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "sparsec_add_model(${target}): unexpected arguments "
      "'${arg_UNPARSED_ARGUMENTS}' (usage: sparsec_add_model(<target> "
      "<file.sdl> [TARGET cpu|cuda] [OPTIONS <arg>...]))")
  endif()
  if(NOT DEFINED arg_TARGET OR arg_TARGET STREQUAL "")
    set(arg_TARGET cpu)
  endif()
  string(TOLOWER "${arg_TARGET}" backend)
  string(REPLACE " " "" backend "${backend}")
  # A library always carries the CPU kernels; `cuda` adds the CUDA ones (the
  # app picks the device with <Model>_create_on, docs/cuda.md).
  if(backend STREQUAL "cuda" OR backend STREQUAL "cpu,cuda" OR
     backend STREQUAL "cuda,cpu")
    set(target_flag --target=cpu,cuda)
  elseif(backend STREQUAL "cpu")
    set(target_flag --target=cpu)
  else()
    message(FATAL_ERROR "sparsec_add_model(${target}): unknown TARGET "
      "'${arg_TARGET}' (expected cpu, cuda or cpu,cuda)")
  endif()
  foreach(opt IN LISTS arg_OPTIONS)
    if(opt MATCHES "^(-o|--?header|--?emit)($|=)")
      message(FATAL_ERROR "sparsec_add_model(${target}): OPTIONS may not "
        "contain '${opt}'; the function sets the outputs itself")
    endif()
  endforeach()

  set(compiler "${SPARSEC_MODEL_COMPILER}")
  if(compiler STREQUAL "")
    set(compiler Sparsec::sparsec)
  endif()
  set(runtime "${SPARSEC_MODEL_RUNTIME}")
  if(runtime STREQUAL "")
    set(runtime Sparsec::runtime_static)
  endif()
  foreach(t IN ITEMS ${compiler} ${runtime})
    if(NOT TARGET ${t})
      message(FATAL_ERROR "sparsec_add_model(${target}): no target '${t}'; "
        "call find_package(Sparsec REQUIRED) in this directory or a parent")
    endif()
  endforeach()

  get_filename_component(sdl_abs "${sdl}" ABSOLUTE)
  if(NOT EXISTS "${sdl_abs}")
    message(FATAL_ERROR "sparsec_add_model(${target}): no such file "
      "'${sdl_abs}'")
  endif()
  set(so "${CMAKE_CURRENT_BINARY_DIR}/lib${target}.so")
  set(h "${CMAKE_CURRENT_BINARY_DIR}/${target}.h")
  # File-level dependencies on the compiler and the runtime archive it links
  # into the model (the generator expressions also add target-level
  # dependencies when they are built in the same project).
  add_custom_command(OUTPUT "${so}" "${h}"
    COMMAND "$<TARGET_FILE:${compiler}>" "${sdl_abs}" -o "${so}"
            "--header=${h}" ${target_flag} ${arg_OPTIONS} ${SPARSEC_MODEL_OPTIONS}
    DEPENDS "${sdl_abs}" "$<TARGET_FILE:${compiler}>"
            "$<TARGET_FILE:${runtime}>" ${SPARSEC_MODEL_DEPENDS}
    COMMENT "sparsec ${sdl} -> lib${target}.so"
    VERBATIM)
  add_custom_target(${target}_generate DEPENDS "${so}" "${h}")
  add_library(${target} SHARED IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES
    IMPORTED_LOCATION "${so}"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_BINARY_DIR}")
  add_dependencies(${target} ${target}_generate)
endfunction()
