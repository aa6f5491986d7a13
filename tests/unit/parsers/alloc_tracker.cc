#include "tests/unit/parsers/alloc_tracker.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace tokentap::test {
namespace {

std::atomic<size_t> g_live{0};
std::atomic<size_t> g_peak{0};

void* allocate(size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  const size_t live =
      g_live.fetch_add(malloc_usable_size(p), std::memory_order_relaxed) + malloc_usable_size(p);
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  return p;
}

void release(void* p) {
  if (p == nullptr) return;
  g_live.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}

}  // namespace

size_t live_heap_bytes() { return g_live.load(std::memory_order_relaxed); }
size_t peak_heap_bytes() { return g_peak.load(std::memory_order_relaxed); }
void reset_peak_heap_bytes() { g_peak.store(live_heap_bytes(), std::memory_order_relaxed); }

}  // namespace tokentap::test

void* operator new(size_t size) { return tokentap::test::allocate(size); }
void* operator new[](size_t size) { return tokentap::test::allocate(size); }
void operator delete(void* p) noexcept { tokentap::test::release(p); }
void operator delete[](void* p) noexcept { tokentap::test::release(p); }
void operator delete(void* p, size_t) noexcept { tokentap::test::release(p); }
void operator delete[](void* p, size_t) noexcept { tokentap::test::release(p); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  try {
    return tokentap::test::allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  try {
    return tokentap::test::allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept { tokentap::test::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { tokentap::test::release(p); }
