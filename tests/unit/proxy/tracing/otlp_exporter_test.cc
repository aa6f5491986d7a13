// The exporter against a local fake OTLP collector (one thread, HTTP/1.1, Connection: close)
// that answers with scripted statuses and records every POSTed body.
#include "proxy/tracing/otlp_exporter.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

using namespace tokentap;
using nlohmann::json;

namespace {

class FakeCollector {
 public:
  explicit FakeCollector(std::deque<std::string> responses) : responses_(std::move(responses)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeCollector() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t span_count() {
    size_t n = 0;
    for (const std::string& r : requests()) {
      json body = json::parse(r.substr(r.find("\r\n\r\n") + 4));
      n += body["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
    }
    return n;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) != 1) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[65536];
      size_t need = std::string::npos;
      while (need == std::string::npos || req.size() < need) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        size_t head_end = req.find("\r\n\r\n");
        if (need == std::string::npos && head_end != std::string::npos) {
          size_t cl = req.find("Content-Length: ");
          need = head_end + 4 + std::stoul(req.substr(cl + 16));
        }
      }
      std::string status = "200 OK";
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
        if (!responses_.empty()) {
          status = responses_.front();
          responses_.pop_front();
        }
      }
      std::string resp = "HTTP/1.1 " + status + "\r\nContent-Length: 2\r\n\r\n{}";
      send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<std::string> responses_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

json test_span(int i) {
  return {{"traceId", "4bf92f3577b34da6a3ce929d0e0e4736"},
          {"spanId", "00f067aa0ba902b7"},
          {"name", "chat m" + std::to_string(i)},
          {"kind", 3}};
}

template <typename F>
bool eventually(F f) {
  for (int i = 0; i < 300; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("exporter: batches spans into OTLP JSON POSTs") {
  FakeCollector collector({});
  OtlpExporterOptions o;
  o.endpoint = collector.endpoint();
  o.protocol = OtlpProtocol::json;
  o.service_name = "svc-a";
  o.max_batch_spans = 3;
  // Long enough that the timer does not fire while the 7 spans are enqueued (full batches are
  // sent on the batch-size wake-up), short enough for the last, partial batch.
  o.flush_interval = std::chrono::milliseconds(500);
  OtlpExporter exporter(o);
  for (int i = 0; i < 7; ++i) REQUIRE(exporter.enqueue(test_span(i)));
  REQUIRE(eventually([&] { return exporter.stats().exported == 7; }));
  auto reqs = collector.requests();
  REQUIRE(reqs.size() >= 3);  // 3 + 3 + 1
  const std::string& first = reqs[0];
  CHECK(first.starts_with("POST /v1/traces HTTP/1.1\r\n"));
  CHECK(first.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  json body = json::parse(first.substr(first.find("\r\n\r\n") + 4));
  CHECK(body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] == "svc-a");
  CHECK(body["resourceSpans"][0]["scopeSpans"][0]["spans"].size() == 3);
  CHECK(body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "chat m0");
  CHECK(collector.span_count() == 7);
  CHECK(exporter.stats().export_errors == 0);
}

TEST_CASE("exporter: retries 503 and 429 with backoff, gives up on 400") {
  FakeCollector collector(
      {"503 Service Unavailable", "429 Too Many Requests", "200 OK", "400 Bad Request"});
  OtlpExporterOptions o;
  o.endpoint = collector.endpoint();
  o.flush_interval = std::chrono::milliseconds(20);
  o.initial_backoff = std::chrono::milliseconds(10);
  OtlpExporter exporter(o);
  exporter.enqueue(test_span(1));
  REQUIRE(eventually([&] { return exporter.stats().exported == 1; }));
  CHECK(exporter.stats().export_errors == 2);
  CHECK(collector.requests().size() == 3);
  exporter.enqueue(test_span(2));
  REQUIRE(eventually([&] { return exporter.stats().dropped_export_failed == 1; }));
  CHECK(collector.requests().size() == 4);  // a 400 is not retried
}

TEST_CASE("exporter: bounded queue drops and counts, never blocks") {
  OtlpExporterOptions o;
  o.endpoint = "http://127.0.0.1:1/v1/traces";  // nothing listens: connection refused
  o.max_queue_spans = 5;
  o.max_batch_spans = 100;
  o.flush_interval = std::chrono::milliseconds(60'000);
  o.max_span_bytes = 200;
  OtlpExporter exporter(o);
  auto t0 = std::chrono::steady_clock::now();
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += exporter.enqueue(test_span(i));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100));
  CHECK(accepted == 5);
  CHECK(exporter.stats().dropped_queue_full == 15);
  json big = test_span(0);
  big["name"] = std::string(300, 'x');
  CHECK_FALSE(exporter.enqueue(big));
  CHECK(exporter.stats().dropped_too_large == 1);
  exporter.stop();  // one last attempt fails: the 5 queued spans are dropped as shutdown
  CHECK(exporter.stats().dropped_shutdown == 5);
  CHECK(exporter.stats().export_errors == 1);
}

TEST_CASE("exporter: refuses an endpoint it cannot use, and a CA file that does not load") {
  OtlpExporterOptions o;
  o.endpoint = "not a url";
  CHECK_THROWS_AS(OtlpExporter(o), std::invalid_argument);
  o.endpoint = "https://127.0.0.1:1/v1/traces";
  o.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_AS(OtlpExporter(o), std::runtime_error);
}

#include <prometheus/text_serializer.h>

#include "proxy/tracing/tracing_metrics.h"

TEST_CASE("metrics: exporter and PII counters render on /metrics") {
  OtlpExporterOptions o;
  o.endpoint = "http://127.0.0.1:1/v1/traces";
  o.max_queue_spans = 1;
  o.flush_interval = std::chrono::milliseconds(60'000);
  auto exporter = std::make_shared<OtlpExporter>(o);
  exporter->enqueue(test_span(1));
  exporter->enqueue(test_span(2));  // queue full
  auto pii = std::make_shared<SharedPiiCounts>();
  PiiCounts c;
  PiiScrubber().scrub("a@example.com and b@example.org", c);
  pii->add(c);
  TracingCollector collector([exporter] { return std::optional(exporter->stats()); }, pii);
  std::string text = prometheus::TextSerializer().Serialize(collector.Collect());
  CHECK(text.find("tokentap_trace_spans_dropped_total{reason=\"queue_full\"} 1") !=
        std::string::npos);
  CHECK(text.find("tokentap_trace_spans_exported_total 0") != std::string::npos);
  CHECK(text.find("tokentap_pii_redactions_total{kind=\"email\"} 2") != std::string::npos);
  CHECK(text.find("tokentap_pii_redactions_total{kind=\"phone\"} 0") != std::string::npos);
}
