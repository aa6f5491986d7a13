#include "proxy/tracing/otlp_exporter.h"

#include <algorithm>
#include <stdexcept>

#include "proxy/tracing/otlp_protobuf.h"

namespace tokentap {
namespace {

bool retryable(int status) {
  return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

std::optional<OtlpProtocol> parse_otlp_protocol(std::string_view name) {
  if (name == "http/protobuf") return OtlpProtocol::protobuf;
  if (name == "http/json") return OtlpProtocol::json;
  return std::nullopt;
}

OtlpExporterStats& OtlpExporterStats::operator+=(const OtlpExporterStats& o) {
  exported += o.exported;
  export_errors += o.export_errors;
  dropped_queue_full += o.dropped_queue_full;
  dropped_too_large += o.dropped_too_large;
  dropped_export_failed += o.dropped_export_failed;
  dropped_shutdown += o.dropped_shutdown;
  return *this;
}

OtlpExporter::OtlpExporter(OtlpExporterOptions options) : options_(std::move(options)) {
  auto url = parse_upstream_url(options_.endpoint);
  if (!url || url->host.empty()) {
    throw std::invalid_argument("tracing endpoint must be http[s]://host[:port]/path");
  }
  target_ = OtlpTarget{.host = url->host,
                       .port = url->port,
                       .path = url->base_path.empty() ? "/v1/traces" : url->base_path,
                       .authority = url->authority,
                       .tls = url->tls};
  if (target_.tls) tls_ = std::make_unique<TlsClientContext>(true, options_.ca_file);
  request_head_ = "POST " + target_.path + " HTTP/1.1\r\nHost: " + target_.authority +
                  "\r\nContent-Type: " +
                  (options_.protocol == OtlpProtocol::protobuf ? "application/x-protobuf"
                                                               : "application/json") +
                  "\r\nConnection: close\r\n";
  for (const auto& [name, value] : options_.headers) {
    request_head_.append(name).append(": ").append(value).append("\r\n");
  }
  envelope_ = nlohmann::json::parse(
      otlp_request_body({}, options_.service_name, options_.resource_attributes));
  thread_ = std::thread([this] { run(); });
}

OtlpExporter::~OtlpExporter() { stop(); }

bool OtlpExporter::enqueue(nlohmann::json span) {
  std::string s = options_.protocol == OtlpProtocol::protobuf
                      ? otlp_span_protobuf(span)
                      : span.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > options_.max_span_bytes) {
    dropped_too_large_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queue_spans ||
        queue_bytes_ + s.size() > options_.max_queue_bytes) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_bytes_ += s.size();
    queue_.push_back(std::move(s));
    if (queue_.size() < options_.max_batch_spans) return true;
  }
  cv_.notify_one();
  return true;
}

void OtlpExporter::request_stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
}

void OtlpExporter::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

OtlpExporterStats OtlpExporter::stats() const {
  OtlpExporterStats s;
  s.exported = exported_.load();
  s.export_errors = export_errors_.load();
  s.dropped_queue_full = dropped_queue_full_.load();
  s.dropped_too_large = dropped_too_large_.load();
  s.dropped_export_failed = dropped_export_failed_.load();
  s.dropped_shutdown = dropped_shutdown_.load();
  return s;
}

void OtlpExporter::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.flush_interval,
                 [&] { return stopping_ || queue_.size() >= options_.max_batch_spans; });
    bool final_round = stopping_;
    while (!queue_.empty()) {
      std::vector<std::string> batch;
      while (!queue_.empty() && batch.size() < options_.max_batch_spans) {
        queue_bytes_ -= queue_.front().size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      export_batch(batch, final_round);
      lock.lock();
      if (!final_round && queue_.size() < options_.max_batch_spans) break;
    }
    if (final_round) {
      finished_.store(true, std::memory_order_release);
      return;
    }
  }
}

std::string OtlpExporter::request_body(const std::vector<std::string>& batch) const {
  if (options_.protocol == OtlpProtocol::protobuf) {
    return otlp_request_protobuf(envelope_, batch);
  }
  std::string spans;
  for (const std::string& s : batch) {
    spans += spans.empty() ? "" : ",";
    spans += s;
  }
  std::string body = envelope_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Splice the already-serialized spans into the empty "spans":[] of the envelope.
  static constexpr std::string_view kEmpty = "\"spans\":[]";
  size_t at = body.find(kEmpty);
  body.insert(at + kEmpty.size() - 1, spans);
  return body;
}

void OtlpExporter::export_batch(std::vector<std::string>& batch, bool final_attempt) {
  std::string body = request_body(batch);
  std::string head = request_head_;
  head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  std::chrono::milliseconds backoff = options_.initial_backoff;
  int attempts = final_attempt ? 1 : options_.max_attempts;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    OtlpPostResult result = otlp_post(target_, tls_.get(), head, body,
                                      std::chrono::steady_clock::now() + options_.timeout);
    int status = result.status;
    std::optional<std::chrono::seconds> retry_after = result.retry_after;
    if (status >= 200 && status < 300) {
      exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      return;
    }
    export_errors_.fetch_add(1, std::memory_order_relaxed);
    if (!retryable(status) || attempt == attempts) break;
    std::chrono::milliseconds wait = backoff;
    if (retry_after) wait = std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after);
    wait = std::min(wait, options_.max_backoff);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [&] { return stopping_; })) {
        attempts = std::min(attempts, attempt + 1);  // one last try on shutdown
      }
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  (final_attempt ? dropped_shutdown_ : dropped_export_failed_)
      .fetch_add(batch.size(), std::memory_order_relaxed);
}

}  // namespace tokentap
