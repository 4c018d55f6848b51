# uvwool_transparent(<target>): link-time transparent mode.
#
# Links <target> with -Wl,--wrap=uv_<name> for every function of uvwool's
# wrapper table (the list generated from wrappers.def, uvwoolWrapList.cmake)
# plus libuvwool-transparent.a, whose __wrap_uv_<name> call uvw_<name>: the
# target's own uv_* calls then propagate context, with no source change.
# Calls made by other shared libraries are not rewritten (use the preload
# object for those).
#
# The target must use the shared uvwool: --wrap rewrites every object of the
# link, and with the static archive it would rewrite uvwool's own calls to
# libuv into calls to itself.
include_guard(GLOBAL)

function(uvwool_transparent target)
  get_property(list_file GLOBAL PROPERTY UVWOOL_WRAP_LIST_FILE)
  if(NOT list_file OR NOT EXISTS "${list_file}")
    message(FATAL_ERROR "uvwool_transparent: uvwool's wrap list was not found (find_package(uvwool) first)")
  endif()
  include("${list_file}")
  get_target_property(libs ${target} LINK_LIBRARIES)
  if(libs MATCHES "uvwool_static")
    message(FATAL_ERROR "uvwool_transparent(${target}): the target links uvwool_static; "
                        "link-time mode needs the shared uvwool (see docs/interpose.md)")
  endif()
  set(wraps "")
  foreach(fn IN LISTS UVWOOL_WRAPPED_FUNCTIONS)
    string(APPEND wraps ",--wrap=${fn}")
  endforeach()
  string(SUBSTRING "${wraps}" 1 -1 wraps)
  target_link_options(${target} PRIVATE "LINKER:${wraps}")
  target_link_libraries(${target} PRIVATE uvwool::uvwool_transparent uvwool::uvwool)
endfunction()
