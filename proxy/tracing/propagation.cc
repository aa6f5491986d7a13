#include "proxy/tracing/propagation.h"

#include "common/text.h"

namespace tokentap {

RequestTrace trace_from_headers(IdGenerator& ids, const HeaderList& headers) {
  const std::string* parent = nullptr;
  int parents = 0;
  std::string tracestate;
  for (const Header& h : headers) {
    if (iequals(h.name, "traceparent")) {
      parent = &h.value;
      ++parents;
    } else if (iequals(h.name, "tracestate")) {
      // Several tracestate fields are one list (RFC 9110 field-line combination).
      if (!tracestate.empty()) tracestate += ',';
      tracestate += h.value;
    }
  }
  std::optional<TraceParent> incoming;
  if (parents == 1) incoming = parse_traceparent(*parent);
  return new_request_trace(ids, incoming, incoming ? std::string_view(tracestate) : "");
}

bool upstream_sampled(const RequestTrace& trace) { return trace.parent_sampled.value_or(true); }

void append_trace_headers(const RequestTrace& trace, std::string& head) {
  head += "traceparent: ";
  head += format_traceparent(trace.trace_id, trace.span_id, upstream_sampled(trace));
  head += "\r\n";
  if (!trace.tracestate.empty()) {
    head += "tracestate: ";
    head += trace.tracestate;
    head += "\r\n";
  }
}

bool is_trace_header(std::string_view lower_name) {
  return lower_name == "traceparent" || lower_name == "tracestate";
}

}  // namespace tokentap
