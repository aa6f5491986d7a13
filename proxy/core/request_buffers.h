// A process-wide budget for request bytes held in memory. JSON request bodies are read whole
// before they are forwarded (so they can be metered); every worker reserves those bytes here
// first, against limits.max_buffered_request_bytes of the request's configuration, and a request
// whose body would take the total over it is answered 503 request_buffer_full instead of growing
// the process. A reservation covers the buffer's capacity (all of a declared Content-Length at
// once) and is given back when the last of its bytes has left the process, written to the
// upstream socket, or when the request ends, however it ends.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>

namespace tokentap {

// Thread-safe. Exposes tokentap_buffered_request_bytes (bytes reserved now) and
// tokentap_request_buffer_full_total (requests refused for lack of budget).
class RequestBufferBudget {
 public:
  explicit RequestBufferBudget(prometheus::Registry& registry);
  RequestBufferBudget(const RequestBufferBudget&) = delete;
  RequestBufferBudget& operator=(const RequestBufferBudget&) = delete;

  // Adds `bytes` if the total stays within `limit`; false, with nothing added, otherwise.
  bool try_reserve(uint64_t bytes, uint64_t limit);
  void release(uint64_t bytes);
  uint64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }
  void count_refusal() { refused_.Increment(); }

 private:
  std::atomic<uint64_t> reserved_{0};
  prometheus::Gauge& gauge_;
  prometheus::Counter& refused_;
};

// One request's share of a RequestBufferBudget, given back when it is destroyed or reset().
// Move-only; a default-constructed one, or one made with a null budget, is never refused.
class BufferReservation {
 public:
  BufferReservation() = default;
  BufferReservation(RequestBufferBudget* budget, uint64_t limit) : budget_(budget), limit_(limit) {}
  BufferReservation(BufferReservation&& other) noexcept { *this = std::move(other); }
  BufferReservation& operator=(BufferReservation&& other) noexcept;
  BufferReservation(const BufferReservation&) = delete;
  BufferReservation& operator=(const BufferReservation&) = delete;
  ~BufferReservation() { reset(); }

  // Holds `total` bytes in all (it never shrinks). False, with nothing changed, when that would
  // take the budget over the limit.
  bool grow_to(uint64_t total);
  // Takes over what `other` holds; `other` must come from the same budget (or hold nothing).
  void absorb(BufferReservation&& other);
  void reset();
  uint64_t bytes() const { return bytes_; }

 private:
  RequestBufferBudget* budget_ = nullptr;
  uint64_t limit_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace tokentap
