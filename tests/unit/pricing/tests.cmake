tokentap_unit_test(test_pricing
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cost_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/golden_pricing_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/price_file_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/price_table_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/terms_test.cc
          ${PROJECT_SOURCE_DIR}/tests/unit/parsers/golden_support.cc
          ${PROJECT_SOURCE_DIR}/tests/unit/parsers/test_codecs.cc
  LIBS tokentap_pricing tokentap_parsers ${BROTLIENC_LIBRARY})
target_compile_definitions(test_pricing PRIVATE
  TOKENTAP_GOLDEN_DIR="${PROJECT_SOURCE_DIR}/tests/golden")
