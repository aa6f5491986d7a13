// Trace context propagation around the upstream hop: the request's trace is decided from the
// client's traceparent/tracestate when its headers arrive, and tokentap's span becomes the parent
// the provider (or a next proxy) sees. Pure.
#pragma once

#include <string>

#include "proxy/http/headers.h"
#include "proxy/tracing/span.h"

namespace tokentap {

// The trace of a request from its headers: the client's trace (a valid traceparent; several
// traceparent headers or an invalid one count as none, per spec) with a fresh span id, else a
// new root trace.
RequestTrace trace_from_headers(IdGenerator& ids, const HeaderList& headers);

// The sampled flag sent upstream before the tail decision is known: the parent's when there is
// one, else true (a request that may fail must not lose its downstream spans).
bool upstream_sampled(const RequestTrace& trace);

// Appends "traceparent: ...\r\n" (and "tracestate: ...\r\n" when carried) for the upstream
// request. The caller drops the client's own traceparent/tracestate lines from the head.
void append_trace_headers(const RequestTrace& trace, std::string& head);

// True for the header names this stage replaces (lower-case).
bool is_trace_header(std::string_view lower_name);

}  // namespace tokentap
