// Writing owned buffers to a libuv stream, shared by the downstream and upstream connections.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <initializer_list>
#include <string>

namespace tokentap {

// Writes `first` then `second` (either may be empty) to `stream` with one writev.
//
// What the socket accepts at once is written synchronously with uv_try_write: no request, no
// callback and no change to the loop's epoll set. Only the rest, if any, is queued with
// uv_write, owning its bytes until libuv is done with them; then (owner->*Done)(bytes, status)
// is called with the number of bytes that were queued. Returns how many bytes were queued (0:
// all written now, Done is never called), or a libuv error code (< 0), in which case nothing was
// queued and Done is not called. A write error met synchronously (EPIPE, ECONNRESET) is not
// returned: the bytes are queued and the error reaches Done, exactly as with a plain uv_write.
template <class Owner, void (Owner::*Done)(size_t, int)>
ssize_t write_owned(uv_stream_t* stream, Owner* owner, std::string first, std::string second = {}) {
  size_t total = first.size() + second.size();
  if (total == 0) return 0;
  size_t written = 0;
  {
    uv_buf_t bufs[2];
    unsigned n = 0;
    if (!first.empty()) bufs[n++] = uv_buf_init(first.data(), static_cast<unsigned>(first.size()));
    if (!second.empty()) {
      bufs[n++] = uv_buf_init(second.data(), static_cast<unsigned>(second.size()));
    }
    // UV_EAGAIN also when earlier writes are still queued: then everything queues behind them.
    int rc = uv_try_write(stream, bufs, n);
    if (rc > 0) written = static_cast<size_t>(rc);
    if (written == total) return 0;
  }

  struct OwnedWrite {
    uv_write_t req{};
    std::string first;
    std::string second;
    Owner* owner{};
    size_t queued{};
  };
  auto* w =
      new OwnedWrite{uv_write_t{}, std::move(first), std::move(second), owner, total - written};
  w->req.data = w;
  uv_buf_t bufs[2];
  unsigned n = 0;
  // Skip what the socket already took; the buffers point into the moved-to strings.
  size_t skip = written;
  for (std::string* s : {&w->first, &w->second}) {
    if (skip >= s->size()) {
      skip -= s->size();
      continue;
    }
    bufs[n++] = uv_buf_init(s->data() + skip, static_cast<unsigned>(s->size() - skip));
    skip = 0;
  }
  int rc = uv_write(&w->req, stream, bufs, n, [](uv_write_t* req, int status) {
    auto* done = static_cast<OwnedWrite*>(req->data);
    Owner* o = done->owner;
    size_t queued = done->queued;
    delete done;
    (o->*Done)(queued, status);
  });
  if (rc != 0) {
    delete w;
    return rc;
  }
  return static_cast<ssize_t>(total - written);
}

}  // namespace tokentap
