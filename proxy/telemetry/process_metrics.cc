#include "proxy/telemetry/process_metrics.h"

#include <openssl/crypto.h>
#include <prometheus/gauge.h>
#include <unistd.h>
#include <uv.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tokentap {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  // procfs files report size 0, so read until EOF instead of trusting the size.
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(text).str();
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::vector<std::string_view> split_whitespace(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n')) ++pos;
    size_t end = pos;
    while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '\n') ++end;
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

prometheus::MetricFamily single_value(const char* name, const char* help,
                                      prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  // Field 2, the command name, is parenthesised and may itself contain ") ", so the fixed
  // fields start after the last ')'. Field 3 (state) is then index 0.
  size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> fields = split_whitespace(text.substr(paren + 1));
  constexpr size_t kFirstField = 3;
  auto field = [&](size_t number) -> std::optional<uint64_t> {
    size_t index = number - kFirstField;
    if (index >= fields.size()) return std::nullopt;
    return parse_u64(fields[index]);
  };
  auto utime = field(14);
  auto stime = field(15);
  auto start = field(22);
  auto vsize = field(23);
  auto rss = field(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  return ProcStat{*utime, *stime, *start, *vsize, *rss};
}

std::optional<uint64_t> parse_boot_time(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::vector<std::string_view> words = split_whitespace(text.substr(pos, end - pos));
    if (words.size() == 2 && words[0] == "btime") return parse_u64(words[1]);
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_max_open_files(std::string_view text) {
  constexpr std::string_view kPrefix = "Max open files";
  size_t at = text.find(kPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view line = text.substr(at + kPrefix.size());
  line = line.substr(0, line.find('\n'));
  std::vector<std::string_view> words = split_whitespace(line);
  if (words.empty()) return std::nullopt;
  return parse_u64(words[0]);  // "unlimited" does not parse
}

ProcessCollector::ProcessCollector(std::string proc_root) : proc_root_(std::move(proc_root)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const std::string self = proc_root_ + "/self";

  if (auto text = read_file(self + "/stat")) {
    if (auto stat = parse_proc_stat(*text)) {
      const auto ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
      const auto page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
      families.push_back(single_value(
          "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
          MetricType::Counter,
          static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks_per_second));
      families.push_back(single_value("process_virtual_memory_bytes",
                                      "Virtual memory size in bytes.", MetricType::Gauge,
                                      static_cast<double>(stat->vsize_bytes)));
      families.push_back(single_value("process_resident_memory_bytes",
                                      "Resident memory size in bytes.", MetricType::Gauge,
                                      static_cast<double>(stat->rss_pages) * page_size));
      auto proc_stat = read_file(proc_root_ + "/stat");
      if (auto boot = proc_stat ? parse_boot_time(*proc_stat) : std::nullopt) {
        families.push_back(single_value(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            MetricType::Gauge,
            static_cast<double>(*boot) +
                static_cast<double>(stat->start_ticks) / ticks_per_second));
      }
    }
  }

  std::error_code ec;
  std::filesystem::directory_iterator fds(self + "/fd", ec);
  if (!ec) {
    double open_fds = 0;
    for (; fds != std::filesystem::directory_iterator(); fds.increment(ec)) {
      if (ec) break;
      ++open_fds;
    }
    if (!ec) {
      families.push_back(single_value("process_open_fds", "Number of open file descriptors.",
                                      MetricType::Gauge, open_fds));
    }
  }

  if (auto limits = read_file(self + "/limits")) {
    if (auto max_fds = parse_max_open_files(*limits)) {
      families.push_back(single_value("process_max_fds", "Maximum number of open file descriptors.",
                                      MetricType::Gauge, static_cast<double>(*max_fds)));
    }
  }
  return families;
}

void register_build_info(prometheus::Registry& registry, std::string_view version) {
  prometheus::BuildGauge()
      .Name("tokentap_build_info")
      .Help("tokentap build information; the value is always 1.")
      .Register(registry)
      .Add({{"version", std::string(version)},
            {"openssl", OpenSSL_version(OPENSSL_VERSION_STRING)},
            {"libuv", uv_version_string()}})
      .Set(1);
}

}  // namespace tokentap
