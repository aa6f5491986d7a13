// Shared by the two halves of DownstreamConnection (downstream_connection.cc: sockets, response,
// clean-up; downstream_request.cc: the request's head and body) and by nothing else.
#pragma once

#include <charconv>
#include <memory>
#include <string>

#include "proxy/core/downstream_connection.h"
#include "proxy/core/exchange.h"
#include "proxy/core/request_buffers.h"
#include "proxy/http/headers.h"

namespace tokentap::downstream_detail {

template <typename T>
DownstreamConnection* self(T* handle) {
  return static_cast<DownstreamConnection*>(handle->data);
}

inline std::string hex(size_t n) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  return std::string(buf, end);
}

}  // namespace tokentap::downstream_detail

namespace tokentap {

struct DownstreamConnection::Active {
  RequestContext ctx;
  std::unique_ptr<RequestObserver> observer;
  std::shared_ptr<const Runtime> runtime;  // the snapshot this request started with
  std::shared_ptr<const Config> config;    // runtime->config
  std::string target;                      // raw request-target, never logged as is
  HeaderList headers;
  HeaderEdits edits;  // from the header stages: lines added to the forwarded heads
  bool in_header_value = false;
  size_t head_bytes = 0;
  size_t chunk_extension_bytes = 0;
  bool headers_done = false;

  bool head_request = false;
  bool client_keep_alive = false;
  bool http10 = false;
  bool request_chunked = false;
  bool request_has_body = false;
  uint64_t content_length = 0;
  bool has_content_length = false;
  bool buffer_body = false;  // JSON: read whole before forwarding
  std::string body;
  BufferReservation body_reservation;  // covers body.capacity(); see reserve_body()
  bool body_replaced = false;          // the observer rewrote the body: ask for identity encoding
  bool request_complete = false;

  UpstreamConnection* upstream = nullptr;
  bool response_started = false;
  bool response_chunked = false;
  bool response_body_expected = false;
  bool response_filtered = false;  // the observer rewrites the body the client receives
  std::string filtered;            // scratch for filtered output
  bool close_after = false;
  bool finished = false;
};

}  // namespace tokentap
