#include "proxy/telemetry/process_metrics.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

namespace tokentap {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tokentap-proc-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::map<std::string, prometheus::MetricFamily> by_name(
    const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, prometheus::MetricFamily> out;
  for (const auto& family : families) out[family.name] = family;
  return out;
}

// Fields 3..24 of /proc/<pid>/stat: utime=14 stime=15 starttime=22 vsize=23 rss=24.
const std::string kStatTail =
    "S 1 1 1 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 5000 104857600 2560 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";

TEST_CASE("parse_proc_stat survives a command name with spaces and parentheses",
          "[process_metrics]") {
  auto stat = parse_proc_stat("4242 (tokentap (x) y) " + kStatTail + "\n");
  REQUIRE(stat);
  CHECK(stat->utime_ticks == 250);
  CHECK(stat->stime_ticks == 150);
  CHECK(stat->start_ticks == 5000);
  CHECK(stat->vsize_bytes == 104857600);
  CHECK(stat->rss_pages == 2560);
}

TEST_CASE("parse_proc_stat rejects malformed input", "[process_metrics]") {
  CHECK_FALSE(parse_proc_stat(""));
  CHECK_FALSE(parse_proc_stat("1 (x) S 1 2 3"));
  CHECK_FALSE(parse_proc_stat("1 x " + kStatTail));
  CHECK_FALSE(
      parse_proc_stat("1 (x) S 1 1 1 0 -1 4194560 100 0 0 0 abc 150 0 0 20 0 3 0 5000 1 2"));
}

TEST_CASE("parse_boot_time and parse_max_open_files", "[process_metrics]") {
  CHECK(parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n") == 1700000000u);
  CHECK_FALSE(parse_boot_time("cpu 1 2 3\n"));
  const std::string limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max processes             96365                96365                processes \n"
      "Max open files            1024                 1048576              files     \n";
  CHECK(parse_max_open_files(limits) == 1024u);
  CHECK_FALSE(parse_max_open_files(
      "Max open files            unlimited            unlimited            files     \n"));
  CHECK_FALSE(parse_max_open_files("Max processes 1 1 processes\n"));
}

TEST_CASE("ProcessCollector derives values from procfs", "[process_metrics]") {
  TempDir proc;
  write_file(proc.path / "self" / "stat", "4242 (tokentap) " + kStatTail + "\n");
  write_file(proc.path / "stat", "cpu 1 2 3\nbtime 1700000000\n");
  write_file(proc.path / "self" / "limits", "Max open files            1024     4096     files\n");
  for (const char* fd : {"0", "1", "2"}) write_file(proc.path / "self" / "fd" / fd, "");

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto families = by_name(ProcessCollector(proc.path.string()).Collect());
  REQUIRE(families.size() == 6);
  CHECK(families["process_cpu_seconds_total"].type == prometheus::MetricType::Counter);
  CHECK(families["process_cpu_seconds_total"].metric.at(0).counter.value == Approx(400 / ticks));
  CHECK(families["process_resident_memory_bytes"].metric.at(0).gauge.value == 2560 * page);
  CHECK(families["process_virtual_memory_bytes"].metric.at(0).gauge.value == 104857600.0);
  CHECK(families["process_start_time_seconds"].metric.at(0).gauge.value ==
        Approx(1700000000 + 5000 / ticks));
  CHECK(families["process_open_fds"].metric.at(0).gauge.value == 3);
  CHECK(families["process_max_fds"].metric.at(0).gauge.value == 1024);
  CHECK(families["process_open_fds"].type == prometheus::MetricType::Gauge);
}

TEST_CASE("ProcessCollector leaves out what it cannot read", "[process_metrics]") {
  TempDir proc;
  CHECK(ProcessCollector((proc.path / "nothing").string()).Collect().empty());

  write_file(proc.path / "self" / "stat", "4242 (tokentap) " + kStatTail + "\n");
  auto families = by_name(ProcessCollector(proc.path.string()).Collect());
  CHECK(families.count("process_cpu_seconds_total") == 1);
  CHECK(families.count("process_start_time_seconds") == 0);  // no /proc/stat btime
  CHECK(families.count("process_open_fds") == 0);
}

TEST_CASE("ProcessCollector reads this process", "[process_metrics]") {
  auto families = by_name(ProcessCollector().Collect());
  REQUIRE(families.size() == 6);
  CHECK(families["process_resident_memory_bytes"].metric.at(0).gauge.value > 0);
  CHECK(families["process_virtual_memory_bytes"].metric.at(0).gauge.value >=
        families["process_resident_memory_bytes"].metric.at(0).gauge.value);
  CHECK(families["process_open_fds"].metric.at(0).gauge.value >= 3);
  CHECK(families["process_max_fds"].metric.at(0).gauge.value >=
        families["process_open_fds"].metric.at(0).gauge.value);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = families["process_start_time_seconds"].metric.at(0).gauge.value;
  CHECK(start <= now + 1);
  CHECK(start > now - 24 * 3600);

  std::string text = prometheus::TextSerializer().Serialize(ProcessCollector().Collect());
  CHECK_THAT(text, Catch::Contains("# TYPE process_cpu_seconds_total counter"));
  CHECK_THAT(text, Catch::Contains("# TYPE process_resident_memory_bytes gauge"));
}

TEST_CASE("register_build_info exposes versions with value 1", "[process_metrics]") {
  prometheus::Registry registry;
  register_build_info(registry, "1.2.3");
  auto families = by_name(registry.Collect());
  REQUIRE(families.count("tokentap_build_info") == 1);
  const auto& metric = families["tokentap_build_info"].metric.at(0);
  CHECK(metric.gauge.value == 1);
  std::map<std::string, std::string> labels;
  for (const auto& label : metric.label) labels[label.name] = label.value;
  CHECK(labels["version"] == "1.2.3");
  CHECK(labels["libuv"] == uv_version_string());
  CHECK(labels["openssl"].rfind("3.", 0) == 0);
}

}  // namespace
}  // namespace tokentap
