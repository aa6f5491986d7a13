// Deferred deletion for an object that owns libuv handles (Envoy's deferredDelete in libuv's
// terms): the object is freed by the last close callback of its handles, never on the stack of
// the call that closed it, so it may close itself from inside any of its own callbacks.
//
// Use: derive from Closable; close every handle through close_handle() (a member handle) or
// close_and_free() (a handle allocated with new), each of which counts its close callback; count
// a libuv request that may call back after those close callbacks (uv_getaddrinfo, uv_fs_*,
// uv_queue_work) with owe_callback() and let its callback start with callback_ran(). Once closed,
// call retire() (after closing at least one handle): the object is deleted when the last counted
// callback has run. Write, connect and shutdown requests on a stream need no counting: libuv
// calls them back, cancelled, before that stream's close callback.
#pragma once

#include <uv.h>

#include <cassert>

namespace tokentap {

class Closable {
 public:
  Closable(const Closable&) = delete;
  Closable& operator=(const Closable&) = delete;

 protected:
  Closable() = default;
  virtual ~Closable() = default;

  // Closes `handle`, which must stay valid until its close callback (a member). Its `data` is
  // taken over: no callback of the handle's own may run after this.
  void close_handle(uv_handle_t* handle) {
    ++owed_;
    handle->data = this;
    uv_close(handle, [](uv_handle_t* h) { static_cast<Closable*>(h->data)->callback_arrived(); });
  }

  // Closes a handle allocated with `new Handle` and deletes it in its close callback.
  template <class Handle>
  void close_and_free(Handle* handle) {
    ++owed_;
    auto* h = reinterpret_cast<uv_handle_t*>(handle);
    h->data = this;
    uv_close(h, [](uv_handle_t* closed) {
      auto* owner = static_cast<Closable*>(closed->data);
      delete reinterpret_cast<Handle*>(closed);
      owner->callback_arrived();
    });
  }

  // A started request whose callback is owed to this object.
  void owe_callback() { ++owed_; }
  // First thing in that callback. False once retired: the callback must return at once
  // without touching the object, which may already be deleted.
  [[nodiscard]] bool callback_ran() {
    if (!retired_) {
      --owed_;
      return true;
    }
    callback_arrived();
    return false;
  }

  // The object is closed and starts nothing new; it is deleted when nothing is owed any more.
  void retire() {
    assert(!retired_ && owed_ > 0);  // some close callback must still come to delete it
    retired_ = true;
  }
  bool retired() const { return retired_; }

 private:
  void callback_arrived() {
    if (--owed_ == 0 && retired_) delete this;
  }

  int owed_ = 0;
  bool retired_ = false;
};

}  // namespace tokentap
