set(TOKENTAP_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
if(TOKENTAP_WERROR)
  list(APPEND TOKENTAP_WARNINGS -Werror)
  # GCC 12 at -O3 reports -Wrestrict inside libstdc++'s std::string operator+ where there is no
  # overlap (GCC bugs 105329, 105651); on that compiler it stays a warning, not an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
     AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    list(APPEND TOKENTAP_WARNINGS -Wno-error=restrict)
  endif()
endif()

# Applies the project warning set to one of our own targets.
function(tokentap_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${TOKENTAP_WARNINGS}>)
endfunction()
