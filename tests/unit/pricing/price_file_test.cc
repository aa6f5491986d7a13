// Price files: tokentap's format, LiteLLM's format, merging over the built-in table, and error
// messages that point at the offending line.
#include "pricing/price_file.h"

#include <catch2/catch.hpp>
#include <string>

#include "pricing/price_table.h"

namespace tokentap::pricing {
namespace {

const ModelPrice& model_in(const PriceFile& file, std::string_view name) {
  for (const ModelPrice& m : file.models) {
    if (m.name == name) return m;
  }
  FAIL("no model " << name);
  throw std::logic_error("unreachable");
}

bool has_model(const PriceFile& file, std::string_view name) {
  for (const ModelPrice& m : file.models) {
    if (m.name == name) return true;
  }
  return false;
}

// The message of the PricingError that parsing `text` as "user.json" throws.
std::string error_of(std::string_view text) {
  try {
    parse_price_file("user.json", text);
  } catch (const PricingError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST_CASE("tokentap format: prices, defaults, tiers and aliases", "[price_file]") {
  const PriceFile file = parse_price_file("team.json", R"({
  "pricing_version": "team-2026-11",
  "unit": "usd_per_million_tokens",
  "sources": {"internal": "https://wiki.example/prices"},
  "models": {
    "Acme-Chat": {
      "provider": "openai_compatible",
      "input": 1, "output": 4, "reasoning": 8,
      "tiers": [{"above_input_tokens": 100000, "input": 2, "cache_read": 0.5}],
      "aliases": ["acme-chat-latest", "ACME"]
    },
    "acme-cached": {"input": 2, "output": 6, "cache_read": 0.2, "cache_write": 2.5,
                    "cache_write_1h": 4},
    "acme-embed": {"kind": "embedding", "input": 0.05}
  }
})");
  CHECK(file.format == PriceFileFormat::tokentap);
  CHECK(file.pricing_version == "team-2026-11");
  REQUIRE(file.models.size() == 3);

  const ModelPrice& chat = model_in(file, "acme-chat");  // names are lower-cased
  CHECK(chat.provider == "openai_compatible");
  CHECK(chat.kind == ModelKind::chat);
  CHECK(chat.base.input == 1'000'000);
  CHECK(chat.base.output == 4'000'000);
  CHECK(chat.base.reasoning == 8'000'000);
  // Unlisted cache prices default to the input price, never to zero.
  CHECK(chat.base.cache_read == 1'000'000);
  CHECK(chat.base.cache_write == 1'000'000);
  CHECK(chat.base.cache_write_1h == 1'000'000);
  REQUIRE(chat.tiers.size() == 1);
  CHECK(chat.tiers[0].above_input_tokens == 100'000);
  CHECK(chat.tiers[0].prices.input == 2'000'000);
  CHECK(chat.tiers[0].prices.cache_read == 500'000);
  // A tier keeps the model's listed prices it does not override...
  CHECK(chat.tiers[0].prices.output == 4'000'000);
  CHECK(chat.tiers[0].prices.reasoning == 8'000'000);
  // ...and the defaults follow the tier's own prices: writes at the tier's input price.
  CHECK(chat.tiers[0].prices.cache_write == 2'000'000);
  CHECK(chat.tiers[0].prices.cache_write_1h == 2'000'000);

  const ModelPrice& cached = model_in(file, "acme-cached");
  CHECK(cached.base.cache_read == 200'000);
  CHECK(cached.base.cache_write == 2'500'000);
  CHECK(cached.base.cache_write_1h == 4'000'000);
  CHECK(cached.base.reasoning == 6'000'000);  // defaults to output

  const ModelPrice& embed = model_in(file, "acme-embed");
  CHECK(embed.kind == ModelKind::embedding);
  CHECK(embed.base.input == 50'000);
  CHECK(embed.base.output == 0);

  REQUIRE(file.aliases.size() == 2);
  CHECK(file.aliases[0] == std::pair<std::string, std::string>{"acme-chat-latest", "acme-chat"});
  CHECK(file.aliases[1] == std::pair<std::string, std::string>{"acme", "acme-chat"});
}

constexpr std::string_view kLiteLlm = R"({
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "mode": "one of: chat, embedding, completion, image_generation",
        "output_cost_per_token": 0.0
    },
    "claude-sonnet-4-5": {
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost": 3e-07,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "input_cost_per_token": 3e-06,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "input_cost_per_token_above_200k_tokens_priority": 9e-06,
        "litellm_provider": "anthropic",
        "max_input_tokens": 1000000,
        "mode": "chat",
        "output_cost_per_token": 1.5e-05,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "supports_prompt_caching": true
    },
    "gemini/gemini-2.5-pro": {
        "input_cost_per_token": 9e-06,
        "litellm_provider": "gemini",
        "mode": "chat",
        "output_cost_per_token": 9e-05
    },
    "gemini-2.5-pro": {
        "cache_read_input_token_cost": 1.25e-07,
        "input_cost_per_token": 1.25e-06,
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "output_cost_per_reasoning_token": 1e-05,
        "output_cost_per_token": 1e-05
    },
    "gemini/gemini-3.5-flash": {
        "input_cost_per_token": 1.5e-06,
        "litellm_provider": "gemini",
        "mode": "chat",
        "output_cost_per_token": 9e-06
    },
    "azure/gpt-4o": {
        "input_cost_per_token": 2.75e-06,
        "litellm_provider": "azure",
        "mode": "chat",
        "output_cost_per_token": 1.1e-05
    },
    "gpt-5-pro": {
        "input_cost_per_token": 1.5e-05,
        "litellm_provider": "openai",
        "mode": "responses",
        "output_cost_per_token": 0.00012
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08,
        "litellm_provider": "openai",
        "mode": "embedding",
        "output_cost_per_token": 0.0
    },
    "dall-e-3": {
        "input_cost_per_image": 0.04,
        "litellm_provider": "openai",
        "mode": "image_generation"
    },
    "whisper-1": {
        "input_cost_per_second": 0.0001,
        "litellm_provider": "openai",
        "mode": "audio_transcription",
        "output_cost_per_second": 0.0001
    },
    "mystery-chat": {
        "input_cost_per_token": null,
        "litellm_provider": "somewhere",
        "mode": "chat",
        "output_cost_per_token": 1e-06
    },
    "input-only-chat": {
        "input_cost_per_token": 1e-06,
        "mode": "chat"
    }
})";

TEST_CASE("LiteLLM format: chat and embedding entries, tiers, prefixes", "[price_file]") {
  const PriceFile file = parse_price_file("model_prices_and_context_window.json", kLiteLlm);
  CHECK(file.format == PriceFileFormat::litellm);
  CHECK(file.pricing_version.empty());

  const ModelPrice& sonnet = model_in(file, "claude-sonnet-4-5");
  CHECK(sonnet.provider == "anthropic");
  CHECK(sonnet.base.input == 3'000'000);
  CHECK(sonnet.base.output == 15'000'000);
  CHECK(sonnet.base.cache_read == 300'000);
  CHECK(sonnet.base.cache_write == 3'750'000);
  CHECK(sonnet.base.cache_write_1h == 6'000'000);
  REQUIRE(sonnet.tiers.size() == 1);  // "_priority" variants are not tiers
  CHECK(sonnet.tiers[0].above_input_tokens == 200'000);
  CHECK(sonnet.tiers[0].prices == TokenPrices{.input = 6'000'000,
                                              .output = 22'500'000,
                                              .cache_read = 600'000,
                                              .cache_write = 7'500'000,
                                              .cache_write_1h = 12'000'000,
                                              .reasoning = 22'500'000,
                                              .input_audio = 6'000'000,
                                              .output_audio = 22'500'000,
                                              .output_image = 22'500'000});
  CHECK(sonnet.service_tiers.empty());  // a priority long-context price without a base one

  // The unprefixed entry wins over "gemini/..." of the same name, whatever the order.
  const ModelPrice& pro = model_in(file, "gemini-2.5-pro");
  CHECK(pro.provider == "vertex_ai-language-models");
  CHECK(pro.base.input == 1'250'000);
  CHECK(pro.base.reasoning == 10'000'000);
  // A prefixed entry alone is imported under the plain model name.
  CHECK(model_in(file, "gemini-3.5-flash").base.output == 9'000'000);
  // Other prefixes name other offerings and stay in the key.
  CHECK(model_in(file, "azure/gpt-4o").base.input == 2'750'000);
  CHECK_FALSE(has_model(file, "gpt-4o"));
  CHECK(model_in(file, "gpt-5-pro").base.output == 120'000'000);  // mode "responses"
  const ModelPrice& embedding = model_in(file, "text-embedding-3-small");
  CHECK(embedding.kind == ModelKind::embedding);
  CHECK(embedding.base.input == 20'000);

  // Skipped: the spec, non-token modes, and entries without both prices.
  for (const char* skipped :
       {"sample_spec", "dall-e-3", "whisper-1", "mystery-chat", "input-only-chat"}) {
    INFO(skipped);
    CHECK_FALSE(has_model(file, skipped));
  }
  CHECK(file.models.size() == 6);
}

TEST_CASE("user files merge over the built-in table, later files winning", "[price_file][merge]") {
  const PriceTable& builtin = PriceTable::builtin();
  const PriceTable first = builtin.merged_with("negotiated.json", R"({
  "pricing_version": "negotiated-2026-10",
  "models": {
    "gpt-4o": {"provider": "openai", "input": 2, "output": 8},
    "acme-chat": {"provider": "vllm", "input": 0, "output": 0, "aliases": ["gpt-5.6"]}
  }
})");
  // The file's model replaces the built-in one; other built-in models stay.
  CHECK(first.find("gpt-4o")->base.input == 2'000'000);
  CHECK(first.find("gpt-4o-2024-08-06")->base.input == 2'000'000);
  CHECK(first.find("gpt-4o-mini")->base.input == 150'000);
  // An explicit zero price is a price, not "unpriced".
  REQUIRE(first.find("acme-chat") != nullptr);
  CHECK(first.find("acme-chat")->base.output == 0);
  // The file's alias replaces the built-in alias of the same name.
  CHECK(first.find("gpt-5.6")->name == "acme-chat");
  CHECK(first.version() == "negotiated-2026-10");
  // The built-in table itself is untouched.
  CHECK(builtin.find("gpt-4o")->base.input == 2'500'000);
  CHECK(builtin.find("gpt-5.6")->name == "gpt-5.6-sol");
  CHECK(builtin.find("acme-chat") == nullptr);

  // A LiteLLM file merged last wins over both, and leaves the version alone.
  const PriceTable second = first.merged_with("litellm.json", kLiteLlm);
  CHECK(second.find("gemini-2.5-pro")->provider == "vertex_ai-language-models");
  CHECK(second.find("models/gemini-2.5-pro")->base.reasoning == 10'000'000);
  CHECK(second.find("azure/gpt-4o")->base.input == 2'750'000);
  CHECK(second.find("gpt-4o")->base.input == 2'000'000);  // not in the LiteLLM file
  CHECK(second.version() == "negotiated-2026-10");

  // A later model named like an earlier alias replaces the alias.
  const PriceTable third = second.merged_with("third.json", R"({"models": {
    "gpt-5.6": {"input": 7, "output": 7}}})");
  CHECK(third.find("gpt-5.6")->name == "gpt-5.6");
  CHECK(third.find("gpt-5.6")->base.input == 7'000'000);
}

TEST_CASE("a file that fails leaves the table as it was", "[price_file][merge]") {
  const PriceTable table = PriceTable::builtin().merged_with(
      "a.json", R"({"models": {"acme": {"input": 1, "output": 1}}})");
  CHECK_THROWS_AS(table.merged_with("b.json", R"({"models": {"acme": {"input": -1}}})"),
                  PricingError);
  CHECK(table.find("acme")->base.input == 1'000'000);
}

TEST_CASE("syntax errors report the line of the offending character", "[price_file][errors]") {
  CHECK(error_of("{\n  \"models\": {\n    \"a\": {\"input\": 1,, \"output\": 2}\n  }\n}\n") ==
        "user.json:3: syntax error while parsing object key - unexpected ','; "
        "expected string literal");
  CHECK(error_of("{\n  \"models\": {\n    \"a\": {\"input\": 1}\n") ==
        "user.json:3: syntax error while parsing object - unexpected end of input; "
        "expected '}'");
  CHECK(error_of("{\n  \"models\": {\"a\": {\"input\": tru}}\n}") ==
        "user.json:2: syntax error while parsing value - invalid literal; "
        "last read: '\"input\": tru}'");
  CHECK(error_of("") ==
        "user.json:1: syntax error while parsing value - unexpected end of input; "
        "expected '[', '{', or a literal");
  CHECK(error_of("{\"models\": {}}\n\n  x")
            .starts_with(
                "user.json:3: syntax error while parsing value - invalid literal; last read: "));
  // The parser's description quotes the input; a long one is cut.
  const std::string long_literal = error_of("{\"models\": " + std::string(5'000, 'x') + "}");
  CHECK(long_literal.starts_with("user.json:1: syntax error while parsing value"));
  CHECK(long_literal.size() < 250);
  // A raw newline inside a string belongs to the line the string started on.
  CHECK(error_of("{\n\"models\": {\"a\nb\": {}}}").starts_with("user.json:2: syntax error"));
}

TEST_CASE("invalid prices and fields report their line", "[price_file][errors]") {
  CHECK(error_of(R"({
  "models": {
    "a": {
      "input": 1,
      "output": -2
    }
  }
})") == "user.json:5: \"output\" must be a price in USD per million tokens: "
        "a number from 0 to 1000000");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": "3", "output": 1}
  }
})") == "user.json:3: \"input\" must be a price in USD per million tokens: "
        "a number from 0 to 1000000");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": 1,
          "ouput": 2}
  }
})") == "user.json:4: unknown key \"ouput\" in model \"a\"; expected one of: provider, kind, "
        "input, output, cache_read, cache_write, cache_write_1h, reasoning, input_audio, "
        "output_audio, output_image, tiers, service_tiers, regions, aliases, notes");
  CHECK(error_of(R"({
  "models": {
    "a": {"output": 2}
  }
})") == "user.json:3: model \"a\" needs an \"input\" price");
  CHECK(error_of(R"({"models": {"a": {"input": 2}}})") ==
        "user.json:1: model \"a\" needs an \"output\" price");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": 1, "output": 1, "kind": "image"}
  }
})") == "user.json:3: \"kind\" must be \"chat\" or \"embedding\"");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": 1, "output": 1, "tiers": [
      {"above_input_tokens": 200000, "input": 2},
      {"above_input_tokens": 100000, "input": 3}
    ]}
  }
})") == "user.json:5: tiers must be listed by increasing \"above_input_tokens\"");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": 1, "output": 1, "tiers": [
      {"input": 2}
    ]}
  }
})") == "user.json:4: a tier needs \"above_input_tokens\": the prompt size above which it "
        "applies");
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 1,
    "tiers": [{"above_input_tokens": 1.5}]}}})") ==
        "user.json:2: \"above_input_tokens\" must be a positive integer");
}

TEST_CASE("service tiers and regions in a price file are checked", "[price_file][terms]") {
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"default": {"multiplier": 2}}}}})")
            .starts_with("user.json:2: service tier \"default\" must name a non-standard tier"));
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"flex": {"multiplier": 0.5, "input": 1}}}}})") ==
        "user.json:2: service tier \"flex\" has a \"multiplier\" and prices: give one or the "
        "other");
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"flex": {"input": 1}}}}})") ==
        "user.json:2: service tier \"flex\" needs a \"multiplier\", or \"input\" and \"output\" "
        "prices");
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"flex": {"multiplier": 0}}}}})") ==
        "user.json:2: \"multiplier\" must be a number above 0 and at most 1000, e.g. 0.5 or 1.1");
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"flex": {"multiplier": 0.5, "speed": 2}}}}})")
            .starts_with("user.json:2: unknown key \"speed\" in service tier \"flex\""));
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "regions": {"global": {"multiplier": 1.1}}}}})")
            .starts_with("user.json:2: region \"global\" must name a non-default region"));
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "regions": {"us": {}}}}})") == "user.json:2: region \"us\" needs a \"multiplier\"");
  CHECK(error_of(R"({"models": {"a": {"input": 1, "output": 2,
    "service_tiers": {"flex": {"input": 1, "output": 1,
      "tiers": [{"above_input_tokens": 10, "input": 2}, {"above_input_tokens": 5, "input": 3}]}}}}})")
            .find("tiers must be listed by increasing") != std::string::npos);
}

TEST_CASE("names must be unique and file-level keys valid", "[price_file][errors]") {
  CHECK(error_of(R"({
  "models": {
    "gpt-x": {"input": 1, "output": 1},
    "GPT-X": {"input": 2, "output": 2}
  }
})") == "user.json:4: model \"gpt-x\" is already defined in this file (names are "
        "case-insensitive)");
  CHECK(error_of(R"({
  "models": {
    "a": {"input": 1, "output": 1},
    "b": {"input": 1, "output": 1,
          "aliases": ["b-latest",
                      "A"]}
  }
})") == "user.json:6: alias \"a\" is already defined in this file (names are "
        "case-insensitive)");
  CHECK(error_of(R"({
  "models": {"a": {"input": 1, "output": 1}},
  "models": {"b": {"input": 1, "output": 1}}
})") == "user.json:3: duplicate key \"models\"");
  CHECK(error_of(R"({"models": {"": {"input": 1, "output": 1}}})") ==
        "user.json:1: a model name must be a non-empty name of at most 256 bytes without "
        "control characters");
  CHECK(error_of(R"({"pricing_version": "2026 11 22", "models": {}})") ==
        "user.json:1: \"pricing_version\" must be 1 to 64 printable characters without spaces, "
        "e.g. \"2026-11-22\"");
  CHECK(error_of(R"({
  "pricing_version": "1",
  "unit": "usd_per_token",
  "models": {}
})") == "user.json:3: \"unit\" must be \"usd_per_million_tokens\"");
  CHECK(error_of(R"({"pricing_version": "1"})") ==
        "user.json:1: missing \"models\": an object of model name -> prices");
  CHECK(error_of(R"({
  "models": {},
  "currency": "EUR"
})") == "user.json:3: unknown key \"currency\" in the price file; expected one of: "
        "pricing_version, unit, sources, notes, models");
}

TEST_CASE("files that are not price files are rejected", "[price_file][errors]") {
  CHECK(error_of("[1, 2]") == "user.json:1: expected a JSON object at the top level");
  CHECK(error_of(R"({"server": {"listen": ":8080"}})") ==
        "user.json:1: expected a tokentap price file (an object with \"models\") or LiteLLM's "
        "model_prices_and_context_window.json (an object of model name -> costs)");
  CHECK(error_of(R"({"dall-e-3": {"mode": "image_generation", "input_cost_per_image": 0.04}})") ==
        "user.json:1: no chat or embedding model with per-token prices found");
  std::string deep(200, '[');
  deep += std::string(200, ']');
  CHECK(error_of(deep) == "user.json:1: nesting deeper than 64 levels is not a price file");
}

TEST_CASE("LiteLLM entries with malformed prices report their line", "[price_file][errors]") {
  CHECK(error_of(R"({
    "acme-chat": {
        "input_cost_per_token": 1e-06,
        "mode": "chat",
        "output_cost_per_token": "2e-06"
    }
})") == "user.json:5: \"output_cost_per_token\" must be a price in USD per token: "
        "a number from 0 to 1");
  CHECK(error_of(R"({
    "acme-chat": {
        "input_cost_per_token": 1e-06,
        "input_cost_per_token_above_128k_tokens": -1,
        "mode": "chat",
        "output_cost_per_token": 2e-06
    }
})") == "user.json:4: \"input_cost_per_token_above_128k_tokens\" must be a price in USD per "
        "token: a number from 0 to 1");
}

}  // namespace
}  // namespace tokentap::pricing
