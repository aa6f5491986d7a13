tokentap_unit_test(test_pricing
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cost_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/price_file_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/price_table_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/terms_test.cc
  LIBS tokentap_pricing)
