set(TOKENTAP_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
if(TOKENTAP_WERROR)
  list(APPEND TOKENTAP_WARNINGS -Werror)
endif()

# Applies the project warning set to one of our own targets.
function(tokentap_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${TOKENTAP_WARNINGS}>)
endfunction()
