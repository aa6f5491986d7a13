#include "proxy/tracing/propagation.h"

#include <catch2/catch.hpp>

using namespace tokentap;

TEST_CASE("propagation: the client's trace continues with tokentap's span as parent upstream") {
  IdGenerator ids(11);
  HeaderList headers = {
      {"Content-Type", "application/json"},
      {"TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
      {"tracestate", "rojo=00f067aa0ba902b7"},
      {"Tracestate", "congo=t61rcWkgMzE"},
  };
  RequestTrace t = trace_from_headers(ids, headers);
  CHECK(to_hex(t.trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  REQUIRE(t.parent_span_id);
  CHECK(to_hex(*t.parent_span_id) == "00f067aa0ba902b7");
  CHECK(t.parent_sampled == false);
  CHECK(t.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  std::string head;
  append_trace_headers(t, head);
  CHECK(head == "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + to_hex(t.span_id) +
                    "-00\r\ntracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\n");
  CHECK(is_trace_header("traceparent"));
  CHECK_FALSE(is_trace_header("content-type"));
}

TEST_CASE("propagation: no, invalid or duplicate traceparent starts a new sampled root") {
  IdGenerator ids(12);
  HeaderList cases[] = {
      {},
      {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
       {"tracestate", "a=b"}},
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"}},
  };
  for (const HeaderList& h : cases) {
    RequestTrace t = trace_from_headers(ids, h);
    CHECK_FALSE(t.parent_span_id);
    CHECK_FALSE(t.parent_sampled);
    CHECK(t.tracestate.empty());  // a tracestate without a valid traceparent is dropped
    CHECK(to_hex(t.trace_id) != "4bf92f3577b34da6a3ce929d0e0e4736");
    std::string head;
    append_trace_headers(t, head);
    CHECK(head.ends_with("-01\r\n"));
  }
}
