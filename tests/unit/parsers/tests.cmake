tokentap_unit_test(test_parsers
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sse_test.cc
  LIBS tokentap_parsers)
