// parser_bench: throughput of the metering parsers (parsers/) on synthetic provider traffic
// shaped like the real thing, next to baselines (memcpy, nlohmann::json::parse, the SSE decoder
// or JSON splitter alone, inflate alone) that show what metering costs relative to merely
// touching the bytes. Every run's result is checked against what the generator put in, so a
// number cannot come from a parser that skipped work: a wrong result ends the program with
// exit status 1. Usage: parser_bench [--quick] [--filter=TEXT]; see bench/README.md.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/workloads.h"
#include "parsers/content_decoder.h"
#include "parsers/json_splitter.h"
#include "parsers/llm_parser.h"
#include "parsers/sse.h"
#include "parsers/stream_options.h"

namespace tokentap::bench {
namespace {

constexpr std::string_view kStreamUsageOption = R"(,"stream_options":{"include_usage":true})";

// One request's worth of work, timed by run() and checked, untimed, by check(): an empty
// string means the result was right. run() and check() share their state through captures.
struct Case {
  std::string name;
  size_t bytes;  // what MB/s is computed from: the (decoded) body size
  std::function<void()> run;
  std::function<std::string()> check;
};

struct Group {
  std::string key;          // for --filter
  std::string title;        // what the input is
  std::vector<Case> cases;  // the first is the baseline the others are compared with
};

Case memcpy_case(std::string_view body, const Pieces& pieces) {
  auto copy = std::make_shared<std::string>(body.size(), '\0');
  return {"memcpy", body.size(),
          [copy, &pieces] {
            char* out = copy->data();
            for (std::string_view piece : pieces) {
              std::memcpy(out, piece.data(), piece.size());
              out += piece.size();
            }
            keep(copy->data());
          },
          [copy, body] { return *copy == body ? std::string() : "memcpy copy differs"; }};
}

// A decoder alone: `count` returns how many events, elements or bytes it produced and whether
// its input ended cleanly; the check compares that with what the generator produced.
Case counting_case(const std::string& name, size_t bytes, size_t expected,
                   const std::function<std::pair<size_t, bool>()>& count) {
  auto result = std::make_shared<std::pair<size_t, bool>>();
  return {name, bytes, [result, count] { *result = count(); },
          [result, expected, name] {
            if (result->first == expected && result->second) return std::string();
            return name + " counted " + std::to_string(result->first) + ", expected " +
                   std::to_string(expected) + (result->second ? "" : "; input did not end cleanly");
          }};
}

Case sse_case(const StreamWorkload& w, const Pieces& pieces) {
  return counting_case("SseDecoder alone", w.body.size(), w.events, [&pieces] {
    SseDecoder decoder;
    SseEvent event;
    size_t n = 0;
    for (std::string_view piece : pieces) {
      while (decoder.next(piece, event)) {
        keep(event.data.data());
        ++n;
      }
    }
    return std::pair(n, decoder.finish());
  });
}

Case parser_case(const StreamWorkload& w, const Pieces& pieces, std::string_view encoding) {
  auto parser = std::make_shared<std::unique_ptr<LlmParser>>();
  return {encoding.empty() ? "LlmParser feed+finish" : "LlmParser feed+finish (gzip)",
          w.body.size(),
          [parser, &w, &pieces, encoding] { *parser = parse_response(w, pieces, encoding); },
          [parser, &w] { return compare_facts(parser->get(), w.expected); }};
}

Group request_group(std::string key, std::string_view what, const RequestWorkload& w,
                    const Pieces& whole) {
  Group g{std::move(key),
          std::string(what) + " request, " + std::to_string(w.body.size()) + " bytes, " +
              std::to_string(w.messages) + " messages, " + std::to_string(tool_spec_count()) +
              " tools",
          {}};
  g.cases.push_back(memcpy_case(w.body, whole));
  auto dom = std::make_shared<nlohmann::json>();
  g.cases.push_back({"nlohmann::json::parse", w.body.size(),
                     [dom, &w] { *dom = nlohmann::json::parse(w.body); },
                     [dom, &w] {
                       const auto it = dom->find("messages");
                       if (it != dom->end() && it->size() == w.messages) return std::string();
                       return std::string("json::parse lost messages");
                     }});
  auto parser = std::make_shared<std::unique_ptr<LlmParser>>();
  g.cases.push_back({"LlmParser on_request_body", w.body.size(),
                     [parser, &w] { *parser = parse_request(w); },
                     [parser, &w] { return compare_facts(parser->get(), w.expected); }});
  return g;
}

Group stream_group(std::string key, std::string_view what, const StreamWorkload& w,
                   const Pieces& pieces, std::string_view unit) {
  Group g{std::move(key),
          std::string(what) + ", " + std::to_string(w.body.size()) + " bytes, " +
              std::to_string(w.events) + " " + std::string(unit) + ", " +
              std::to_string(pieces.size()) + " pieces of 1-4 KiB",
          {}};
  g.cases.push_back(memcpy_case(w.body, pieces));
  return g;
}

// Everything the cases refer to; a deque never moves its elements.
struct Inputs {
  std::deque<RequestWorkload> requests;
  std::deque<StreamWorkload> streams;
  std::deque<Pieces> pieces;
  std::deque<std::string> gzipped;
};

std::vector<Group> build_groups(Inputs& in, bool quick) {
  const size_t request_bytes = quick ? 32u << 10 : 256u << 10;
  const size_t stream_events = quick ? 1000 : 10000;
  const size_t gemini_chunks = quick ? 400 : 4000;
  Rng rng(20250101);
  auto pieces_of = [&](std::string_view body) -> const Pieces& {
    return in.pieces.emplace_back(split(body, rng));
  };
  std::vector<Group> groups;

  const RequestWorkload& openai_req = in.requests.emplace_back(openai_request(request_bytes, rng));
  Group openai_req_group = request_group("openai-request", "OpenAI chat/completions", openai_req,
                                         in.pieces.emplace_back(Pieces{openai_req.body}));
  auto injected = std::make_shared<std::optional<std::string>>();
  openai_req_group.cases.push_back(
      {"add_stream_usage_option", openai_req.body.size(),
       [injected, &openai_req] { *injected = add_stream_usage_option(openai_req.body); },
       [injected, &openai_req] {
         const std::string_view body = openai_req.body;
         const std::string want =
             std::string(body.substr(0, body.size() - 1)) + std::string(kStreamUsageOption) + "}";
         return *injected == want ? std::string() : "stream_options was not added at the end";
       }});
  groups.push_back(std::move(openai_req_group));
  const RequestWorkload& anthropic_req =
      in.requests.emplace_back(anthropic_request(request_bytes, rng));
  groups.push_back(request_group("anthropic-request", "Anthropic Messages", anthropic_req,
                                 in.pieces.emplace_back(Pieces{anthropic_req.body})));

  const StreamWorkload& openai = in.streams.emplace_back(openai_stream(stream_events, rng));
  const Pieces& openai_pieces = pieces_of(openai.body);
  Group openai_group = stream_group("openai-sse", "OpenAI chat/completions SSE stream", openai,
                                    openai_pieces, "events");
  openai_group.cases.push_back(sse_case(openai, openai_pieces));
  openai_group.cases.push_back(parser_case(openai, openai_pieces, ""));
  auto filtered = std::make_shared<std::string>();
  auto removed = std::make_shared<uint32_t>(0);
  openai_group.cases.push_back({"UsageChunkFilter", openai.body.size(),
                                [filtered, removed, &openai_pieces] {
                                  UsageChunkFilter filter;
                                  filtered->clear();
                                  for (std::string_view piece : openai_pieces)
                                    filter.feed(piece, *filtered);
                                  filter.finish(*filtered);
                                  *removed = filter.removed_events();
                                },
                                [filtered, removed, &openai] {
                                  if (*removed == 1 && *filtered == openai.filtered)
                                    return std::string();
                                  return "UsageChunkFilter removed " + std::to_string(*removed) +
                                         " events, passed " + std::to_string(filtered->size()) +
                                         " bytes, expected 1 and " +
                                         std::to_string(openai.filtered.size());
                                }});
  groups.push_back(std::move(openai_group));

  const std::string& gz = in.gzipped.emplace_back(gzip_per_event(openai.body));
  const Pieces& gz_pieces = pieces_of(gz);
  Group gz_group{"openai-sse-gzip",
                 "the same OpenAI stream gzip-encoded with a sync flush per event, " +
                     std::to_string(gz.size()) + " bytes in " + std::to_string(gz_pieces.size()) +
                     " pieces of 1-4 KiB; MB/s of decoded bytes",
                 {}};
  gz_group.cases.push_back(
      counting_case("ContentDecoder gzip alone", openai.body.size(), openai.body.size(), [&] {
        ContentDecoder decoder(ContentEncoding::gzip);
        std::string_view out;
        size_t n = 0;
        for (std::string_view piece : gz_pieces) {
          while (decoder.next(piece, out) == ContentDecoder::Status::output) {
            keep(out.data());
            n += out.size();
          }
        }
        return std::pair(n, decoder.complete());
      }));
  gz_group.cases.push_back(parser_case(openai, gz_pieces, "gzip"));
  groups.push_back(std::move(gz_group));

  const StreamWorkload& anthropic = in.streams.emplace_back(anthropic_stream(stream_events, rng));
  const Pieces& anthropic_pieces = pieces_of(anthropic.body);
  Group anthropic_group = stream_group("anthropic-sse", "Anthropic Messages SSE stream", anthropic,
                                       anthropic_pieces, "events");
  anthropic_group.cases.push_back(sse_case(anthropic, anthropic_pieces));
  anthropic_group.cases.push_back(parser_case(anthropic, anthropic_pieces, ""));
  groups.push_back(std::move(anthropic_group));

  const StreamWorkload& gemini = in.streams.emplace_back(gemini_stream(gemini_chunks, rng));
  const Pieces& gemini_pieces = pieces_of(gemini.body);
  Group gemini_group = stream_group("gemini-array", "Gemini streamGenerateContent JSON array",
                                    gemini, gemini_pieces, "elements");
  gemini_group.cases.push_back(
      counting_case("JsonSplitter alone", gemini.body.size(), gemini.events, [&gemini_pieces] {
        JsonSplitter splitter;
        JsonPart part;
        size_t n = 0;
        for (std::string_view piece : gemini_pieces) {
          while (splitter.next(piece, part) == JsonSplitter::Status::part) {
            keep(part.value.data());
            ++n;
          }
        }
        return std::pair(n, splitter.finish());
      }));
  gemini_group.cases.push_back(parser_case(gemini, gemini_pieces, ""));
  groups.push_back(std::move(gemini_group));
  return groups;
}

struct Timing {
  double median = 0;  // seconds per run
  double min = 0;
  size_t runs = 0;
};

Timing measure(const Case& c, const std::string& label, bool quick) {
  const int warmups = quick ? 1 : 3;
  const size_t min_runs = quick ? 3 : 30;
  const size_t max_runs = quick ? 3 : 5000;
  const double min_seconds = quick ? 0.0 : 1.0;
  auto verify = [&] {
    if (std::string why = c.check(); !why.empty()) die(label + ": wrong result: " + why);
  };
  for (int i = 0; i < warmups; ++i) {
    c.run();
    verify();
  }
  std::vector<double> samples;
  double total = 0;
  while (samples.size() < min_runs || (total < min_seconds && samples.size() < max_runs)) {
    const auto start = std::chrono::steady_clock::now();
    c.run();
    const auto stop = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(stop - start).count();
    samples.push_back(seconds);
    total += seconds;
    verify();
  }
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  Timing t;
  t.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  t.min = samples.front();
  t.runs = n;
  return t;
}

std::string format_time(double seconds) {
  char text[32];
  if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.1f us", seconds * 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.2f ms", seconds * 1e3);
  }
  return text;
}

std::string format_rate(size_t bytes, double seconds) {
  char text[32];
  const double mb_per_s = static_cast<double>(bytes) / seconds / 1e6;
  std::snprintf(text, sizeof text, mb_per_s < 100 ? "%.1f" : "%.0f", mb_per_s);
  return text;
}

int bench_main(int argc, char** argv) {
  bool quick = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg.substr(0, 9) == "--filter=") {
      filter = arg.substr(9);
    } else {
      std::fprintf(stderr,
                   "usage: parser_bench [--quick] [--filter=TEXT]\n"
                   "  --quick        smoke run: 32 KiB requests, 1,000-event streams, one warm-up\n"
                   "                 and three timed runs per case\n"
                   "  --filter=TEXT  only cases whose \"group/case\" name contains TEXT\n");
      return arg == "--help" || arg == "-h" ? EXIT_SUCCESS : EXIT_FAILURE;
    }
  }
#if defined(TOKENTAP_SANITIZED) || !defined(NDEBUG) || !defined(__OPTIMIZE__)
  std::printf("warning: not an optimized release build; these numbers are not representative\n\n");
#endif
  Inputs inputs;
  const std::vector<Group> groups = build_groups(inputs, quick);
  std::printf("MB/s = 10^6 bytes per second; time = one request (median and best of N runs)\n");
  for (const Group& g : groups) {
    bool header = false;
    std::optional<double> baseline;
    for (const Case& c : g.cases) {
      const std::string label = g.key + "/" + c.name;
      if (!filter.empty() && label.find(filter) == std::string::npos) continue;
      if (!header) {
        std::printf("\n%s (%s)\n\n", g.title.c_str(), g.key.c_str());
        std::printf("| case | median | best | MB/s (median) | MB/s (best) | vs %s | runs |\n",
                    g.cases.front().name.c_str());
        std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
        header = true;
      }
      const Timing t = measure(c, label, quick);
      if (&c == &g.cases.front()) baseline = t.median;
      char ratio[32] = "-";
      if (baseline) std::snprintf(ratio, sizeof ratio, "%.1fx", t.median / *baseline);
      std::printf("| %s | %s | %s | %s | %s | %s | %zu |\n", c.name.c_str(),
                  format_time(t.median).c_str(), format_time(t.min).c_str(),
                  format_rate(c.bytes, t.median).c_str(), format_rate(c.bytes, t.min).c_str(),
                  ratio, t.runs);
      std::fflush(stdout);
    }
  }
  return EXIT_SUCCESS;
}

}  // namespace
}  // namespace tokentap::bench

int main(int argc, char** argv) {
  try {
    return tokentap::bench::bench_main(argc, argv);
  } catch (const std::exception& e) {
    tokentap::bench::die(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    tokentap::bench::die("unexpected exception");
  }
}
