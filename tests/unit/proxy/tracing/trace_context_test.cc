#include "proxy/tracing/trace_context.h"

#include <catch2/catch.hpp>

#include "proxy/tracing/sampler.h"

using namespace tokentap;

namespace {
constexpr const char* kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
}

TEST_CASE("traceparent: version 00 round trip") {
  auto tp = parse_traceparent(kValid);
  REQUIRE(tp);
  CHECK(to_hex(tp->trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(to_hex(tp->parent_id) == "00f067aa0ba902b7");
  CHECK(tp->sampled);
  CHECK(format_traceparent(tp->trace_id, tp->parent_id, true) == kValid);
  auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(unsampled);
  CHECK_FALSE(unsampled->sampled);
  // Only bit 0 is the sampled flag.
  auto other_flags = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02");
  REQUIRE(other_flags);
  CHECK_FALSE(other_flags->sampled);
}

TEST_CASE("traceparent: rejects invalid values") {
  const char* bad[] = {
      "",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // not hex
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",         // short trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",         // short parent id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 has 4 fields
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // forbidden version
      "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  for (const char* v : bad) {
    INFO(v);
    CHECK_FALSE(parse_traceparent(v));
  }
}

TEST_CASE("traceparent: a future version is read by its known fields") {
  auto tp = parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever");
  REQUIRE(tp);
  CHECK(tp->sampled);
  CHECK_FALSE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
}

TEST_CASE("tracestate is carried bounded") {
  CHECK(bounded_tracestate(" rojo=00f067aa0ba902b7,congo=t61rcWkgMzE ") ==
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  CHECK(bounded_tracestate(std::string(kMaxTraceState, 'a')).size() == kMaxTraceState);
  CHECK(bounded_tracestate(std::string(kMaxTraceState + 1, 'a')).empty());
  CHECK(bounded_tracestate("a=b\r\nx-evil: 1").empty());
}

TEST_CASE("ids are random and never zero") {
  IdGenerator ids(42);
  TraceId a = ids.trace_id();
  TraceId b = ids.trace_id();
  CHECK_FALSE(is_zero(a));
  CHECK(a != b);
  CHECK_FALSE(is_zero(ids.span_id()));
  for (int i = 0; i < 1000; ++i) {
    double u = ids.unit();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("sampling: failures kept, parent decides, else the ratio") {
  CHECK(keep_span(true, false, 0.0, 0.99));
  CHECK(keep_span(false, true, 0.0, 0.99));
  CHECK_FALSE(keep_span(false, false, 1.0, 0.0));
  CHECK(keep_span(false, std::nullopt, 0.25, 0.1));
  CHECK_FALSE(keep_span(false, std::nullopt, 0.25, 0.3));
  CHECK_FALSE(keep_span(false, std::nullopt, 0.0, 0.0));
  IdGenerator ids(7);
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += keep_span(false, std::nullopt, 0.25, ids.unit());
  CHECK(kept > 2200);
  CHECK(kept < 2800);
}
