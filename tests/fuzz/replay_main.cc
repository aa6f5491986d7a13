// The main() a fuzz target gets when it is not linked with libFuzzer: runs every file of the
// directories (or the files) named on the command line through LLVMFuzzerTestOneInput, so that
// each corpus and regression directory is an ordinary ctest test in every build. A directory
// that does not exist contributes no inputs; finding no input at all is a failure.
//
// Like libFuzzer's -rss_limit_mb and -timeout, a watchdog fails the run when the process
// grows past TOKENTAP_REPLAY_RSS_MB (default 2048) or one input runs longer than
// TOKENTAP_REPLAY_SECONDS (default 60): an input that once ate all memory must not take the
// machine running the tests down with it.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_regular_file(path)) {
    files.push_back(path);
  } else if (fs::is_directory(path)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(path)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && !name.starts_with(".") && name != "README.md") {
        files.push_back(entry.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

long env_limit(const char* name, long fallback) {
  const char* text = std::getenv(name);
  const long value = text != nullptr ? std::atol(text) : 0;
  return value > 0 ? value : fallback;
}

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

class Watchdog {
 public:
  Watchdog()
      : rss_limit_(static_cast<size_t>(env_limit("TOKENTAP_REPLAY_RSS_MB", 2048)) << 20),
        time_limit_(std::chrono::seconds(env_limit("TOKENTAP_REPLAY_SECONDS", 60))),
        thread_([this] { run(); }) {
    thread_.detach();
  }

  void start(const std::string& input) {
    std::lock_guard<std::mutex> lock(mu_);
    input_ = input;
    started_ = std::chrono::steady_clock::now();
  }

 private:
  [[noreturn]] void fail(const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "\nreplay: %s exceeded the %s limit\n", input_.c_str(), what);
    std::fflush(stderr);
    std::_Exit(1);
  }

  void run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (resident_bytes() > rss_limit_) fail("memory (TOKENTAP_REPLAY_RSS_MB)");
      std::chrono::steady_clock::time_point started;
      {
        std::lock_guard<std::mutex> lock(mu_);
        started = started_;
      }
      if (started != std::chrono::steady_clock::time_point{} &&
          std::chrono::steady_clock::now() - started > time_limit_) {
        fail("time (TOKENTAP_REPLAY_SECONDS)");
      }
    }
  }

  const size_t rss_limit_;
  const std::chrono::seconds time_limit_;
  std::mutex mu_;
  std::string input_;
  std::chrono::steady_clock::time_point started_{};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  static Watchdog* watchdog = new Watchdog();  // never destroyed: its thread runs until exit
  const auto start = std::chrono::steady_clock::now();
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    for (const fs::path& file : inputs_in(argv[i])) {
      std::ifstream in(file, std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      if (!in.good() && !in.eof()) {
        std::fprintf(stderr, "cannot read %s\n", file.c_str());
        return 1;
      }
      std::printf("%s\n", file.c_str());
      std::fflush(stdout);
      watchdog->start(file.string());
      // An exactly sized copy, so that AddressSanitizer sees any read past the input.
      std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
      std::copy(bytes.begin(), bytes.end(), copy.get());
      LLVMFuzzerTestOneInput(copy.get(), bytes.size());
      ++count;
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::printf("replayed %zu inputs in %lld ms\n", count, static_cast<long long>(ms));
  if (count == 0) {
    std::fprintf(stderr, "no inputs found\n");
    return 1;
  }
  return 0;
}
