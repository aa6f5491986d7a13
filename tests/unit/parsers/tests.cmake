find_library(BROTLIENC_LIBRARY brotlienc REQUIRED)
tokentap_unit_test(test_parsers
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/alloc_tracker.cc
          ${CMAKE_CURRENT_LIST_DIR}/bounded_memory_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/content_capture_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/content_decoder_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/endpoint_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/golden_support.cc
          ${CMAKE_CURRENT_LIST_DIR}/golden_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/json_parse_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/json_splitter_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/llm_parser_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/sse_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/stream_options_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/test_codecs.cc
          ${CMAKE_CURRENT_LIST_DIR}/tool_results_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/usage_estimate_test.cc
  LIBS tokentap_parsers ${BROTLIENC_LIBRARY})
target_compile_definitions(test_parsers PRIVATE
  TOKENTAP_GOLDEN_DIR="${PROJECT_SOURCE_DIR}/tests/golden")
