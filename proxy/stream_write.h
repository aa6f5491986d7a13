// One uv_write of a buffer the write owns until libuv is done with it, shared by the downstream
// and upstream connections.
#pragma once

#include <uv.h>

#include <string>

namespace tokentap {

// Queues `data` on `stream`. When libuv finishes (or cancels, on close) the write, calls
// (owner->*Done)(bytes, status). Returns 0, or a libuv error code, in which case Done is not
// called and nothing was queued.
template <class Owner, void (Owner::*Done)(size_t, int)>
int write_owned(uv_stream_t* stream, std::string data, Owner* owner) {
  struct OwnedWrite {
    uv_write_t req;
    std::string data;
    Owner* owner;
  };
  auto* w = new OwnedWrite{uv_write_t{}, std::move(data), owner};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* done = static_cast<OwnedWrite*>(req->data);
    Owner* o = done->owner;
    size_t n = done->data.size();
    delete done;
    (o->*Done)(n, status);
  });
  if (rc != 0) delete w;
  return rc;
}

}  // namespace tokentap
