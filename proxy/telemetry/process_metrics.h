// Process metrics in the Prometheus client-library convention (the names every process
// dashboard already knows), read from procfs at scrape time, plus tokentap_build_info.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

// The fields of /proc/<pid>/stat that the collector uses, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;
};

// Parses the text of /proc/<pid>/stat (the command name may contain spaces and parentheses).
std::optional<ProcStat> parse_proc_stat(std::string_view text);
// The "btime" (boot time, unix seconds) line of /proc/stat.
std::optional<uint64_t> parse_boot_time(std::string_view text);
// The soft "Max open files" limit of /proc/<pid>/limits; nullopt when unlimited or absent.
std::optional<uint64_t> parse_max_open_files(std::string_view text);

// Reports process_cpu_seconds_total (counter, user + system), process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and process_start_time_seconds
// (gauges). Each scrape reads procfs afresh; a metric whose source cannot be read is left out
// rather than reported as zero. `proc_root` exists for tests; Collect() is thread-safe.
class ProcessCollector : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string proc_root = "/proc");
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_root_;
};

// Registers tokentap_build_info{version,openssl,libuv} = 1 (the linked library versions).
void register_build_info(prometheus::Registry& registry, std::string_view version);

}  // namespace tokentap
