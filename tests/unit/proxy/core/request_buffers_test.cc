#include "proxy/core/request_buffers.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <thread>
#include <vector>

using namespace tokentap;

namespace {

double gauge_value(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) {
      return family.metric[0].gauge.value + family.metric[0].counter.value;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("the request buffer budget refuses what would exceed the limit", "[request_buffers]") {
  prometheus::Registry registry;
  RequestBufferBudget budget(registry);
  CHECK(budget.try_reserve(600, 1000));
  CHECK(budget.try_reserve(400, 1000));
  CHECK_FALSE(budget.try_reserve(1, 1000));
  CHECK(budget.reserved() == 1000);
  CHECK(gauge_value(registry, "tokentap_buffered_request_bytes") == 1000);
  budget.release(400);
  CHECK_FALSE(budget.try_reserve(401, 1000));
  CHECK(budget.try_reserve(400, 1000));
  // A smaller limit (a reload lowered it) refuses new bytes until enough were given back.
  CHECK_FALSE(budget.try_reserve(1, 500));
  CHECK_FALSE(budget.try_reserve(UINT64_MAX, UINT64_MAX));
  budget.release(1000);
  CHECK(budget.reserved() == 0);
  CHECK(gauge_value(registry, "tokentap_buffered_request_bytes") == 0);
  budget.count_refusal();
  CHECK(gauge_value(registry, "tokentap_request_buffer_full_total") == 1);
}

TEST_CASE("a reservation gives its bytes back however it ends", "[request_buffers]") {
  prometheus::Registry registry;
  RequestBufferBudget budget(registry);
  {
    BufferReservation r(&budget, 100);
    CHECK(r.grow_to(60));
    CHECK(r.grow_to(40));  // never shrinks
    CHECK(r.bytes() == 60);
    CHECK_FALSE(r.grow_to(101));
    CHECK(r.bytes() == 60);
    CHECK(budget.reserved() == 60);

    BufferReservation moved = std::move(r);
    CHECK(r.bytes() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    CHECK(budget.reserved() == 60);

    BufferReservation other(&budget, 100);
    CHECK(other.grow_to(30));
    moved.absorb(std::move(other));
    CHECK(moved.bytes() == 90);
    CHECK(budget.reserved() == 90);
    other = BufferReservation();  // destroying the absorbed one gives nothing back twice
    CHECK(budget.reserved() == 90);

    BufferReservation assigned(&budget, 100);
    assigned = std::move(moved);
    CHECK(budget.reserved() == 90);
  }
  CHECK(budget.reserved() == 0);

  BufferReservation r(&budget, 100);
  CHECK(r.grow_to(100));
  r.reset();
  CHECK(budget.reserved() == 0);
  CHECK(r.grow_to(10));  // usable again after a reset
  r = BufferReservation();
  CHECK(budget.reserved() == 0);

  BufferReservation unlimited(nullptr, 0);  // no budget: never refused, nothing counted
  CHECK(unlimited.grow_to(1ull << 40));
}

TEST_CASE("concurrent reservations never exceed the limit together", "[request_buffers]") {
  prometheus::Registry registry;
  RequestBufferBudget budget(registry);
  constexpr uint64_t kLimit = 1 << 20;
  std::atomic<uint64_t> held{0};
  std::atomic<uint64_t> peak{0};
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<BufferReservation> mine;
      for (int i = 0; i < 20000; ++i) {
        if (mine.size() > 8 || (!mine.empty() && rng() % 4 == 0)) {
          held -= mine.back().bytes();
          mine.pop_back();
          continue;
        }
        BufferReservation r(&budget, kLimit);
        // Eight of these average a whole limit: one thread alone reaches it many times.
        uint64_t want = 1 + rng() % (kLimit / 4);
        if (!r.grow_to(want)) {
          ++refused;
          continue;
        }
        uint64_t now = held += want;
        uint64_t seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        mine.push_back(std::move(r));
      }
      for (auto& r : mine) held -= r.bytes();
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(peak.load() <= kLimit);
  CHECK(refused.load() > 0);  // the limit was actually reached
  CHECK(budget.reserved() == 0);
  CHECK(gauge_value(registry, "tokentap_buffered_request_bytes") == 0);
}
