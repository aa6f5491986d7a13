// Cost arithmetic: every token class and every tier against hand-computed values.
//
// Reminder for reading the numbers: $1 per million tokens is 1'000 nano-USD per token, so a price
// of $3/MTok costs 3'000 nano-USD per token and $0.30/MTok costs 300.
#include "pricing/cost.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "pricing/price_table.h"

namespace tokentap::pricing {
namespace {

TokenPrices usd_per_mtok(double input, double output, double cache_read, double cache_write,
                         double cache_write_1h, double reasoning) {
  return TokenPrices{.input = pico_per_token_from_usd_per_mtok(input),
                     .output = pico_per_token_from_usd_per_mtok(output),
                     .cache_read = pico_per_token_from_usd_per_mtok(cache_read),
                     .cache_write = pico_per_token_from_usd_per_mtok(cache_write),
                     .cache_write_1h = pico_per_token_from_usd_per_mtok(cache_write_1h),
                     .reasoning = pico_per_token_from_usd_per_mtok(reasoning)};
}

// A model with a distinct price for every token class, so each class shows in the total.
ModelPrice distinct_prices() {
  ModelPrice m;
  m.name = "test-model";
  m.base = usd_per_mtok(3, 15, 0.30, 3.75, 6, 20);
  m.tiers = {PriceTier{200'000, usd_per_mtok(6, 22.50, 0.60, 7.50, 12, 30)}};
  return m;
}

const ModelPrice& builtin(std::string_view name) {
  const ModelPrice* price = PriceTable::builtin().find(name);
  REQUIRE(price != nullptr);
  return *price;
}

TEST_CASE("prices convert from USD per million tokens to pico-USD per token", "[cost]") {
  CHECK(pico_per_token_from_usd_per_mtok(1) == 1'000'000);
  CHECK(pico_per_token_from_usd_per_mtok(3.75) == 3'750'000);
  CHECK(pico_per_token_from_usd_per_mtok(0.1) == 100'000);
  CHECK(pico_per_token_from_usd_per_mtok(0.005) == 5'000);
  CHECK(pico_per_token_from_usd_per_mtok(0.000001) == 1);
  CHECK(pico_per_token_from_usd_per_mtok(0) == 0);
  CHECK(pico_per_token_from_usd_per_mtok(1'000'000) == 1'000'000'000'000);
  CHECK(pico_per_token_from_usd_per_mtok(-0.5) == -1);
  CHECK(pico_per_token_from_usd_per_mtok(1'000'000.5) == -1);
  CHECK(pico_per_token_from_usd_per_mtok(std::nan("")) == -1);
  CHECK(pico_per_token_from_usd_per_mtok(std::numeric_limits<double>::infinity()) == -1);
}

TEST_CASE("each token class is billed at its own price", "[cost]") {
  const ModelPrice m = distinct_prices();
  SECTION("uncached input") {
    // 1'000 x $3 = 3'000'000 nano
    CHECK(cost_nano_usd({.input = 1'000}, m) == 3'000'000);
  }
  SECTION("cache reads are part of input, billed at the cache-read price") {
    // 600 uncached x $3 + 400 read x $0.30 = 1'800'000 + 120'000
    CHECK(cost_nano_usd({.input = 1'000, .cache_read = 400}, m) == 1'920'000);
  }
  SECTION("cache writes with the default TTL") {
    // 700 uncached x $3 + 300 written x $3.75 = 2'100'000 + 1'125'000
    CHECK(cost_nano_usd({.input = 1'000, .cache_write = 300}, m) == 3'225'000);
  }
  SECTION("cache writes with the 1-hour TTL") {
    // 700 x $3 + 100 x $3.75 (5m) + 200 x $6 (1h) = 2'100'000 + 375'000 + 1'200'000
    CHECK(cost_nano_usd({.input = 1'000, .cache_write = 300, .cache_write_1h = 200}, m) ==
          3'675'000);
  }
  SECTION("output") {
    // 2'000 x $15 = 30'000'000
    CHECK(cost_nano_usd({.output = 2'000}, m) == 30'000'000);
  }
  SECTION("reasoning is part of output, billed at the reasoning price") {
    // 1'500 x $15 + 500 x $20 = 22'500'000 + 10'000'000
    CHECK(cost_nano_usd({.output = 2'000, .reasoning = 500}, m) == 32'500'000);
  }
  SECTION("all classes at once") {
    // input 10'000 = 1'000 uncached + 6'000 read + 3'000 written (1'000 of them for 1h);
    // output 2'000 = 1'500 visible + 500 reasoning.
    //   1'000 x $3     =  3'000'000
    //   6'000 x $0.30  =  1'800'000
    //   2'000 x $3.75  =  7'500'000
    //   1'000 x $6     =  6'000'000
    //   1'500 x $15    = 22'500'000
    //     500 x $20    = 10'000'000
    //   total          = 50'800'000 nano = $0.0508
    const BillableUsage u{.input = 10'000,
                          .output = 2'000,
                          .cache_read = 6'000,
                          .cache_write = 3'000,
                          .cache_write_1h = 1'000,
                          .reasoning = 500};
    CHECK(cost_nano_usd(u, m) == 50'800'000);
  }
  SECTION("no tokens cost nothing") { CHECK(cost_nano_usd({}, m) == 0); }
}

TEST_CASE("the long-context tier applies to the whole request above its threshold", "[cost]") {
  const ModelPrice m = distinct_prices();
  SECTION("a prompt of exactly the threshold stays at base prices") {
    // 200'000 x $3 + 1'000 x $15 = 600'000'000 + 15'000'000
    CHECK(cost_nano_usd({.input = 200'000, .output = 1'000}, m) == 615'000'000);
  }
  SECTION("one token more bills every token at the tier") {
    // 200'001 x $6 + 1'000 x $22.50 = 1'200'006'000 + 22'500'000
    CHECK(cost_nano_usd({.input = 200'001, .output = 1'000}, m) == 1'222'506'000);
  }
  SECTION("cached tokens count toward the threshold and are billed at tier prices") {
    // input 250'000 = 50'000 uncached + 150'000 read + 50'000 written (10'000 for 1h);
    // output 4'000 = 3'000 visible + 1'000 reasoning.
    //    50'000 x $6     = 300'000'000
    //   150'000 x $0.60  =  90'000'000
    //    40'000 x $7.50  = 300'000'000
    //    10'000 x $12    = 120'000'000
    //     3'000 x $22.50 =  67'500'000
    //     1'000 x $30    =  30'000'000
    //   total            = 907'500'000
    const BillableUsage u{.input = 250'000,
                          .output = 4'000,
                          .cache_read = 150'000,
                          .cache_write = 50'000,
                          .cache_write_1h = 10'000,
                          .reasoning = 1'000};
    CHECK(cost_nano_usd(u, m) == 907'500'000);
  }
  SECTION("with several tiers the highest threshold exceeded wins") {
    ModelPrice stepped;
    stepped.base = usd_per_mtok(1, 1, 1, 1, 1, 1);
    stepped.tiers = {PriceTier{100, usd_per_mtok(2, 2, 2, 2, 2, 2)},
                     PriceTier{1'000, usd_per_mtok(5, 5, 5, 5, 5, 5)}};
    CHECK(cost_nano_usd({.input = 100}, stepped) == 100'000);      // 100 x $1
    CHECK(cost_nano_usd({.input = 101}, stepped) == 202'000);      // 101 x $2
    CHECK(cost_nano_usd({.input = 1'000}, stepped) == 2'000'000);  // 1'000 x $2
    CHECK(cost_nano_usd({.input = 1'001}, stepped) == 5'005'000);  // 1'001 x $5
  }
}

TEST_CASE("costs round once, half up, from pico- to nano-USD", "[cost]") {
  ModelPrice m;
  m.base.input = 100;                          // $0.0001 per million tokens: 0.1 nano-USD per token
  CHECK(cost_nano_usd({.input = 4}, m) == 0);  // 400 pico
  CHECK(cost_nano_usd({.input = 5}, m) == 1);  // 500 pico
  CHECK(cost_nano_usd({.input = 14}, m) == 1);  // 1'400 pico
  CHECK(cost_nano_usd({.input = 15}, m) == 2);  // 1'500 pico
  m.base.output = 400;
  // Classes are summed before rounding: 4 x 100 + 1 x 400 = 800 pico -> 1 nano, where rounding
  // each class alone would give 0 + 0.
  CHECK(cost_nano_usd({.input = 4, .output = 1}, m) == 1);
}

TEST_CASE("inconsistent subsets are clamped, never billed twice", "[cost]") {
  const ModelPrice m = distinct_prices();
  // More cache reads than input: the 100 input tokens are all billed as reads (100 x $0.30).
  CHECK(cost_nano_usd({.input = 100, .cache_read = 500}, m) == 30'000);
  // Reads and writes exceeding input: reads first, then what is left is written (60 x $3.75).
  CHECK(cost_nano_usd({.input = 100, .cache_read = 40, .cache_write = 90}, m) ==
        40 * 300 + 60 * 3'750);
  // More 1h writes than writes: all 50 writes at the 1h price.
  CHECK(cost_nano_usd({.input = 50, .cache_write = 50, .cache_write_1h = 80}, m) == 50 * 6'000);
  // More reasoning than output: all 10 output tokens at the reasoning price.
  CHECK(cost_nano_usd({.output = 10, .reasoning = 30}, m) == 10 * 20'000);
}

TEST_CASE("absurd token counts saturate instead of overflowing", "[cost]") {
  const ModelPrice m = distinct_prices();
  const uint64_t huge = std::numeric_limits<uint64_t>::max() / 2;
  CHECK(cost_nano_usd({.input = huge, .output = huge}, m) == std::numeric_limits<int64_t>::max());
}

TEST_CASE("TokenUsage from the parsers maps onto billable usage", "[cost]") {
  TokenUsage t;
  t.present = true;
  t.input = 1'200;
  t.output = 300;
  t.cache_read = 1'000;
  t.cache_write = 100;
  t.cache_write_1h = 40;
  t.reasoning = 200;
  BillableUsage b = billable_usage(t);
  CHECK(b.input == 1'200);
  CHECK(b.output == 300);
  CHECK(b.cache_read == 1'000);
  CHECK(b.cache_write == 100);
  CHECK(b.cache_write_1h == 40);
  CHECK(b.reasoning == 200);
}

TEST_CASE("built-in prices give hand-computed bills", "[cost][builtin]") {
  SECTION(
      "Anthropic: 5m and 1h cache writes on claude-sonnet-4-5 (golden messages_stream_cache_1h)") {
    // input 4'825 = 25 uncached + 1'800 read + 1'000 written for 5m + 2'000 written for 1h;
    // output 15.  25 x $3 + 1'800 x $0.30 + 1'000 x $3.75 + 2'000 x $6 + 15 x $15 (per MTok)
    //   = 75'000 + 540'000 + 3'750'000 + 12'000'000 + 225'000 nano-USD
    const BillableUsage u{.input = 4'825,
                          .output = 15,
                          .cache_read = 1'800,
                          .cache_write = 3'000,
                          .cache_write_1h = 2'000};
    CHECK(cost_nano_usd(u, builtin("claude-sonnet-4-5")) == 16'590'000);
  }
  SECTION("Anthropic: cache read and 5m write on claude-sonnet-4-5") {
    // input 12'000 = 1'000 uncached + 10'000 read + 1'000 written; output 800.
    //   1'000 x $3 + 10'000 x $0.30 + 1'000 x $3.75 + 800 x $15
    //   = 3'000'000 + 3'000'000 + 3'750'000 + 12'000'000
    const BillableUsage u{
        .input = 12'000, .output = 800, .cache_read = 10'000, .cache_write = 1'000};
    CHECK(cost_nano_usd(u, builtin("claude-sonnet-4-5")) == 21'750'000);
  }
  SECTION("Anthropic: 1-hour writes on claude-opus-4-7") {
    // 2'000 written for 1h x $10 + 1'000 output x $25 = 20'000'000 + 25'000'000
    const BillableUsage u{
        .input = 2'000, .output = 1'000, .cache_write = 2'000, .cache_write_1h = 2'000};
    CHECK(cost_nano_usd(u, builtin("claude-opus-4-7")) == 45'000'000);
  }
  SECTION("Anthropic long context on claude-sonnet-4 above 200K") {
    // 210'000 input (10'000 read) and 1'000 output, all at long-context prices:
    //   200'000 x $6 + 10'000 x $0.60 + 1'000 x $22.50 = 1'200'000'000 + 6'000'000 + 22'500'000
    const BillableUsage u{.input = 210'000, .output = 1'000, .cache_read = 10'000};
    CHECK(cost_nano_usd(u, builtin("claude-sonnet-4-20250514")) == 1'228'500'000);
  }
  SECTION("claude-haiku-5-5 switches prices above 100K prompt tokens") {
    // 100'000 x $0.10 + 1'000 x $0.50 = 10'000'000 + 500'000
    CHECK(cost_nano_usd({.input = 100'000, .output = 1'000}, builtin("claude-haiku-5-5")) ==
          10'500'000);
    // 100'001 x $0.50 + 1'000 x $2.50 = 50'000'500 + 2'500'000
    CHECK(cost_nano_usd({.input = 100'001, .output = 1'000}, builtin("claude-haiku-5-5")) ==
          52'500'500);
  }
  SECTION("OpenAI cached input on gpt-4o-mini") {
    // input 2'000 = 976 uncached + 1'024 cached; output 300.
    //   976 x $0.15 + 1'024 x $0.075 + 300 x $0.60 = 146'400 + 76'800 + 180'000
    const BillableUsage u{.input = 2'000, .output = 300, .cache_read = 1'024};
    CHECK(cost_nano_usd(u, builtin("gpt-4o-mini")) == 403'200);
  }
  SECTION("OpenAI reasoning is billed as output on o4-mini") {
    // 1'000 x $1.10 + 5'000 output (4'000 reasoning) x $4.40 = 1'100'000 + 22'000'000
    const BillableUsage u{.input = 1'000, .output = 5'000, .reasoning = 4'000};
    CHECK(cost_nano_usd(u, builtin("o4-mini")) == 23'100'000);
  }
  SECTION("OpenAI long context on gpt-6-sol above 272K") {
    // input 300'000 = 200'000 uncached + 100'000 cached; output 10'000; all at the long tier:
    //   200'000 x $4 + 100'000 x $0.40 + 10'000 x $15 = 800'000'000 + 40'000'000 + 150'000'000
    const BillableUsage u{.input = 300'000, .output = 10'000, .cache_read = 100'000};
    CHECK(cost_nano_usd(u, builtin("gpt-6-sol")) == 990'000'000);
    // At exactly 272'000: 172'000 x $2 + 100'000 x $0.20 + 10'000 x $10
    const BillableUsage at{.input = 272'000, .output = 10'000, .cache_read = 100'000};
    CHECK(cost_nano_usd(at, builtin("gpt-6-sol")) == 344'000'000 + 20'000'000 + 100'000'000);
  }
  SECTION("Gemini long context on gemini-2.5-pro above 200K, thinking billed as output") {
    // 250'000 x $2.50 + 2'000 output (1'000 thinking) x $15 = 625'000'000 + 30'000'000
    const BillableUsage u{.input = 250'000, .output = 2'000, .reasoning = 1'000};
    CHECK(cost_nano_usd(u, builtin("models/gemini-2.5-pro")) == 655'000'000);
    // 150'000 x $1.25 + 2'000 x $10 = 187'500'000 + 20'000'000
    const BillableUsage short_prompt{.input = 150'000, .output = 2'000};
    CHECK(cost_nano_usd(short_prompt, builtin("gemini-2.5-pro")) == 207'500'000);
  }
  SECTION("embeddings bill input only") {
    // 1'000'000 x $0.02 = 20'000'000 nano = $0.02
    CHECK(cost_nano_usd({.input = 1'000'000}, builtin("text-embedding-3-small")) == 20'000'000);
  }
}

}  // namespace
}  // namespace tokentap::pricing
