#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "common/text.h"

namespace tokentap {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tokentap-log-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_CASE("LineWriter appends lines to a file, adding missing newlines", "[log]") {
  TempDir dir;
  fs::path file = dir.path / "access.log";
  { std::ofstream(file) << "earlier\n"; }
  LineWriter writer(file.string());
  CHECK(writer.enabled());
  CHECK(writer.write("{\"a\":1}"));
  CHECK(writer.write("{\"b\":2}\n"));
  CHECK(writer.write(""));
  writer.flush();
  CHECK(read_all(file) == "earlier\n{\"a\":1}\n{\"b\":2}\n\n");
  CHECK(writer.dropped() == 0);
}

TEST_CASE("LineWriter destructor writes everything queued", "[log]") {
  TempDir dir;
  fs::path file = dir.path / "access.log";
  {
    LineWriter writer(file.string());
    for (int i = 0; i < 500; ++i) REQUIRE(writer.write("line " + std::to_string(i)));
  }
  std::vector<std::string> lines = split_lines(read_all(file));
  REQUIRE(lines.size() == 500);
  CHECK(lines.front() == "line 0");
  CHECK(lines.back() == "line 499");
}

TEST_CASE("LineWriter keeps lines whole under concurrent writers", "[log]") {
  TempDir dir;
  fs::path file = dir.path / "access.log";
  constexpr int kThreads = 4;
  constexpr int kLines = 2000;
  {
    LineWriter writer(file.string());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < kLines; ++i) {
          writer.write("thread " + std::to_string(t) + " line " + std::to_string(i) +
                       " padding-padding-padding");
        }
      });
    }
    for (auto& thread : threads) thread.join();
    writer.flush();
    CHECK(writer.dropped() == 0);
  }
  std::vector<std::string> lines = split_lines(read_all(file));
  REQUIRE(lines.size() == kThreads * kLines);
  std::set<std::string> unique(lines.begin(), lines.end());
  CHECK(unique.size() == lines.size());
  CHECK(unique.count("thread 3 line 1999 padding-padding-padding") == 1);
}

TEST_CASE("LineWriter drops and counts lines when its queue is full", "[log]") {
  // A pipe that is already full blocks the writer thread, so queued bytes cannot drain until
  // the test reads from the pipe.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  REQUIRE(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
  std::string filler(4096, 'f');
  size_t filled = 0;
  for (;;) {
    ssize_t n = ::write(fds[1], filler.data(), filler.size());
    if (n < 0) break;
    filled += static_cast<size_t>(n);
  }
  while (::write(fds[1], "f", 1) == 1) ++filled;
  REQUIRE(filled > 0);

  {
    LineWriter writer("/proc/self/fd/" + std::to_string(fds[1]), 100);
    CHECK(writer.write(std::string(60, 'a')));
    CHECK_FALSE(writer.write(std::string(60, 'b')));
    CHECK_FALSE(writer.write(std::string(200, 'c')));
    CHECK(writer.dropped() == 2);

    std::string drained;
    std::string expected_tail = std::string(60, 'a') + "\n";
    char buf[8192];
    while (drained.size() < filled + expected_tail.size()) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      REQUIRE(n > 0);
      drained.append(buf, static_cast<size_t>(n));
    }
    CHECK(drained.substr(filled) == expected_tail);
    writer.flush();
    CHECK(writer.write("after"));
    writer.flush();
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) == "after\n");
    CHECK(writer.dropped() == 2);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("LineWriter counts lines lost to write errors as dropped", "[log]") {
  LineWriter writer("/dev/full");
  CHECK(writer.write("one"));
  CHECK(writer.write("two"));
  writer.flush();
  CHECK(writer.write("three"));
  writer.flush();
  CHECK(writer.dropped() == 3);
}

TEST_CASE("LineWriter destinations off, stdout, and an unopenable path", "[log]") {
  LineWriter off("off");
  CHECK_FALSE(off.enabled());
  CHECK(off.write("discarded"));
  off.flush();
  CHECK(off.dropped() == 0);

  LineWriter out("stdout");
  CHECK(out.enabled());

  TempDir dir;
  std::string bad = (dir.path / "missing-dir" / "access.log").string();
  CHECK_THROWS_WITH(LineWriter(bad), Catch::Contains(bad) && Catch::Contains("No such file"));
  CHECK_THROWS_AS(LineWriter(""), std::runtime_error);
}

TEST_CASE("append_json_string always produces valid JSON", "[log]") {
  auto roundtrip = [](std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return nlohmann::json::parse(out).get<std::string>();
  };
  std::string plain = "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f";
  CHECK(roundtrip(plain) == plain);
  CHECK(roundtrip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // Lone continuation byte, truncated sequence, overlong encoding, UTF-16 surrogate.
  CHECK(roundtrip("a\x80z") == "a\xef\xbf\xbdz");
  CHECK(roundtrip("a\xe2\x82") == "a\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(roundtrip("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(roundtrip("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");

  std::string out;
  append_json_string(out, std::string_view("\0", 1));
  CHECK(out == "\"\\u0000\"");
}

TEST_CASE("utc_timestamp format", "[log]") {
  CHECK(std::regex_match(utc_timestamp(),
                         std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
  // The date and time are cached per second: the same second, the next one, and back again.
  using std::chrono::milliseconds;
  const std::chrono::system_clock::time_point t(milliseconds(1764979199123));
  CHECK(utc_timestamp(t) == "2025-12-05T23:59:59.123Z");
  CHECK(utc_timestamp(t + milliseconds(800)) == "2025-12-05T23:59:59.923Z");
  CHECK(utc_timestamp(t + milliseconds(877)) == "2025-12-06T00:00:00.000Z");
  CHECK(utc_timestamp(t + milliseconds(86400000)) == "2025-12-06T23:59:59.123Z");
  CHECK(utc_timestamp(t) == "2025-12-05T23:59:59.123Z");
}

// Points file descriptor 2 at a file for the lifetime of the object.
class StderrCapture {
 public:
  explicit StderrCapture(const fs::path& file) {
    saved_ = dup(STDERR_FILENO);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() {
    dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }

 private:
  int saved_ = -1;
};

TEST_CASE("LineWriters sharing stderr never interleave inside a line", "[log]") {
  // Pipe writes above PIPE_BUF may be split, so two unsynchronised writers would mix lines.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::string received;
  std::thread reader([&received, fd = fds[0]] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) received.append(buf, static_cast<size_t>(n));
  });
  constexpr int kLines = 100;
  constexpr size_t kLineSize = 20'000;
  {
    flush_diag_log();
    int saved = dup(STDERR_FILENO);
    REQUIRE(dup2(fds[1], STDERR_FILENO) == STDERR_FILENO);
    ::close(fds[1]);
    {
      LineWriter a("stderr");
      LineWriter b("stderr");
      std::thread writer_a([&a] {
        for (int i = 0; i < kLines; ++i) a.write(std::string(kLineSize, 'a'));
      });
      std::thread writer_b([&b] {
        for (int i = 0; i < kLines; ++i) b.write(std::string(kLineSize, 'b'));
      });
      writer_a.join();
      writer_b.join();
    }
    dup2(saved, STDERR_FILENO);
    ::close(saved);
  }
  reader.join();
  ::close(fds[0]);
  std::vector<std::string> lines = split_lines(received);
  REQUIRE(lines.size() == 2 * kLines);
  for (const std::string& line : lines) {
    REQUIRE(line.size() == kLineSize);
    REQUIRE(line.find_first_not_of(line[0]) == std::string::npos);
  }
}

TEST_CASE("diag writes one JSON object per line to stderr", "[log]") {
  TempDir dir;
  fs::path file = dir.path / "stderr.log";
  {
    flush_diag_log();
    StderrCapture capture(file);
    init_diag_log(LogLevel::info);
    CHECK_FALSE(diag_enabled(LogLevel::debug));
    CHECK(diag_enabled(LogLevel::warn));
    diag(LogLevel::debug, "hidden");
    diag(LogLevel::info, "listening \"admin\"\nnow",
         {{"address", "127.0.0.1:9901"}, {"msg", "dup"}});
    diag(LogLevel::error, "upstream rejected sk-CANARY-not-a-real-key-0123456789",
         {{"detail", "key AIzaSyCANARY_notAkey_0123456789_canary"}});
    init_diag_log(LogLevel::error);
    diag(LogLevel::warn, "hidden too");
    flush_diag_log();
  }
  init_diag_log(LogLevel::info);

  std::vector<std::string> lines = split_lines(read_all(file));
  REQUIRE(lines.size() == 2);
  auto first = nlohmann::json::parse(lines[0]);
  CHECK(first["level"] == "info");
  CHECK(first["msg"] == "listening \"admin\"\nnow");
  CHECK(first["address"] == "127.0.0.1:9901");
  CHECK(first["_msg"] == "dup");
  CHECK(std::regex_match(first["time"].get<std::string>(),
                         std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
  CHECK(lines[0].rfind("{\"time\":", 0) == 0);

  auto second = nlohmann::json::parse(lines[1]);
  CHECK(second["level"] == "error");
  CHECK(second["msg"] == "upstream rejected REDACTED");
  CHECK(second["detail"] == "key REDACTED");
}

TEST_CASE("diag is safe from many threads", "[log]") {
  TempDir dir;
  fs::path file = dir.path / "stderr.log";
  {
    flush_diag_log();
    StderrCapture capture(file);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < 200; ++i) {
          diag(LogLevel::info, "tick", {{"thread", std::to_string(t)}, {"i", std::to_string(i)}});
        }
      });
    }
    for (auto& thread : threads) thread.join();
    flush_diag_log();
  }
  std::vector<std::string> lines = split_lines(read_all(file));
  REQUIRE(lines.size() == 800);
  for (const std::string& line : lines) {
    REQUIRE_NOTHROW(nlohmann::json::parse(line));
  }
}

}  // namespace
}  // namespace tokentap
