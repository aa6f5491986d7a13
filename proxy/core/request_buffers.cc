#include "proxy/core/request_buffers.h"

#include <utility>

namespace tokentap {

RequestBufferBudget::RequestBufferBudget(prometheus::Registry& registry)
    : gauge_(prometheus::BuildGauge()
                 .Name("tokentap_buffered_request_bytes")
                 .Help("Request body bytes held in memory now, against "
                       "limits.max_buffered_request_bytes")
                 .Register(registry)
                 .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("tokentap_request_buffer_full_total")
                   .Help("Requests answered 503 because buffering their body would exceed "
                         "limits.max_buffered_request_bytes")
                   .Register(registry)
                   .Add({})) {}

bool RequestBufferBudget::try_reserve(uint64_t bytes, uint64_t limit) {
  uint64_t now = reserved_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit || now > limit - bytes) return false;
  } while (!reserved_.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
  gauge_.Increment(static_cast<double>(bytes));
  return true;
}

void RequestBufferBudget::release(uint64_t bytes) {
  if (bytes == 0) return;
  reserved_.fetch_sub(bytes, std::memory_order_relaxed);
  gauge_.Decrement(static_cast<double>(bytes));
}

BufferReservation& BufferReservation::operator=(BufferReservation&& other) noexcept {
  if (this != &other) {
    reset();
    budget_ = std::exchange(other.budget_, nullptr);
    limit_ = other.limit_;
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool BufferReservation::grow_to(uint64_t total) {
  if (total <= bytes_) return true;
  if (budget_ != nullptr && !budget_->try_reserve(total - bytes_, limit_)) return false;
  bytes_ = total;
  return true;
}

void BufferReservation::absorb(BufferReservation&& other) {
  if (budget_ == nullptr) {
    *this = std::move(other);
    return;
  }
  bytes_ += std::exchange(other.bytes_, 0);
  other.budget_ = nullptr;
}

void BufferReservation::reset() {
  if (budget_ != nullptr) budget_->release(bytes_);
  bytes_ = 0;
}

}  // namespace tokentap
