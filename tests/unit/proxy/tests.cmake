# One Catch2 executable per proxy/ layer; the sources mirror proxy/<layer>/.
set(P ${CMAKE_CURRENT_LIST_DIR})
tokentap_unit_test(test_proxy_net SOURCES ${P}/net/tls_test.cc ${P}/net/listen_socket_test.cc
  LIBS tokentap_net)
# identity_test also checks that the stores keyed by identities stay bounded.
tokentap_unit_test(test_proxy_http
  SOURCES ${P}/http/http_test.cc ${P}/http/secrets_test.cc ${P}/http/identity_test.cc
          ${P}/http/forwarding_test.cc
  LIBS tokentap_http tokentap_metering tokentap_policy tokentap_telemetry)
# The connection tests drive a real worker through tests/support/proxy_harness.h.
tokentap_unit_test(test_proxy_core
  SOURCES ${P}/core/request_context_test.cc ${P}/core/request_buffers_test.cc
          ${P}/core/downstream_connection_test.cc ${P}/core/upstream_connection_test.cc
  LIBS tokentap_core tokentap_telemetry tokentap_proxy_harness)
tokentap_unit_test(test_proxy_metering
  SOURCES ${P}/metering/metering_test.cc ${P}/metering/metering_sinks_test.cc
          ${P}/metering/pending_tool_calls_test.cc ${P}/metering/tool_timing_test.cc
          ${PROJECT_SOURCE_DIR}/tests/unit/parsers/golden_support.cc
  LIBS tokentap_proxy_harness)
target_compile_definitions(test_proxy_metering PRIVATE
  TOKENTAP_GOLDEN_DIR="${PROJECT_SOURCE_DIR}/tests/golden")
tokentap_unit_test(test_proxy_policy
  SOURCES ${P}/policy/budgets_test.cc ${P}/policy/sessions_test.cc ${P}/policy/admission_test.cc
          ${P}/policy/circuit_breaker_test.cc
  LIBS tokentap_policy tokentap_metering)
tokentap_unit_test(test_proxy_telemetry
  SOURCES ${P}/telemetry/usage_test.cc ${P}/telemetry/process_metrics_test.cc
  LIBS tokentap_telemetry tokentap_admin)
tokentap_unit_test(test_proxy_admin SOURCES ${P}/admin/admin_test.cc LIBS tokentap_admin)
