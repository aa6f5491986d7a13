#include <openssl/opensslv.h>
#include <uv.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "config/config.h"
#include "proxy/app/server.h"
#include "proxy/core/runtime.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: tokentap [options]

A sidecar that forwards LLM API traffic to the provider unchanged and meters it.

Options:
  --config FILE          YAML configuration (default: $TOKENTAP_CONFIG, else built-in defaults)
  --listen HOST:PORT     proxy listener (overrides the config; default 127.0.0.1:8080)
  --admin-listen HOST:PORT
                         admin listener (default 0.0.0.0:9901): /healthz, /readyz, /metrics
                         open; /v1/* from loopback, else with admin.token_file's bearer token
  --check-config         validate the configuration and exit
  --version              print the version and exit
  --help                 print this help and exit

Environment:
  TOKENTAP_CONFIG        configuration file when --config is not given
  TOKENTAP_AGENT         agent name for requests without the agent header
  OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG)
                         tracing overrides (README, "Tracing"); K8S_POD_NAME and the other
                         K8S_* downward-API variables become span resource attributes

Signals:
  SIGHUP                 reload the config and price files (a change of either also reloads)
  SIGTERM, SIGINT        drain: finish requests in flight, accept no new ones, exit 0
)";

struct Options {
  std::string config_file;
  std::optional<std::string> listen;
  std::optional<std::string> admin_listen;
  bool check_config = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "tokentap: " << message << "\n"
            << "Try 'tokentap --help'.\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options options;
  if (const char* env = std::getenv("TOKENTAP_CONFIG"); env && *env) options.config_file = env;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view name) -> std::string {
      std::string prefix = std::string(name) + "=";
      if (arg.starts_with(prefix)) return std::string(arg.substr(prefix.size()));
      if (i + 1 >= argc) usage_error(std::string(name) + " needs a value");
      return argv[++i];
    };
    auto is = [&](std::string_view name) {
      return arg == name || arg.starts_with(std::string(name) + "=");
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--version") {
      std::cout << "tokentap " << TOKENTAP_VERSION << " (" << OPENSSL_VERSION_TEXT << ", libuv "
                << uv_version_string() << ")\n";
      std::exit(0);
    } else if (is("--config")) {
      options.config_file = value("--config");
    } else if (is("--listen")) {
      options.listen = value("--listen");
    } else if (is("--admin-listen")) {
      options.admin_listen = value("--admin-listen");
    } else if (arg == "--check-config") {
      options.check_config = true;
    } else {
      usage_error("unknown option " + std::string(arg));
    }
  }
  return options;
}

tokentap::HostPort address_flag(std::string_view flag, const std::string& text) {
  auto hp = tokentap::parse_host_port(text);
  if (!hp) usage_error(std::string(flag) + ": expected HOST:PORT, got \"" + text + "\"");
  return *hp;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_args(argc, argv);
  tokentap::Config config;
  try {
    config = options.config_file.empty() ? tokentap::default_config()
                                         : tokentap::load_config_file(options.config_file);
  } catch (const tokentap::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  try {
    tokentap::apply_environment(config);
  } catch (const tokentap::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  if (options.listen) config.listen = address_flag("--listen", *options.listen);
  if (options.admin_listen)
    config.admin_listen = address_flag("--admin-listen", *options.admin_listen);

  if (options.check_config) {
    try {
      tokentap::load_price_table(config.pricing);
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
    std::cout << config.source << ": ok (" << config.routes.size() << " routes, " << config.workers
              << " workers)\n";
    return 0;
  }
  try {
    // A reload reads the same file again (listen addresses and workers stay as started).
    tokentap::ConfigSource source{options.config_file, [path = options.config_file] {
                                    tokentap::Config next = path.empty()
                                                                ? tokentap::default_config()
                                                                : tokentap::load_config_file(path);
                                    tokentap::apply_environment(next);
                                    return next;
                                  }};
    tokentap::Server server(std::move(config), std::move(source));
    return server.run();
  } catch (const std::exception& e) {
    tokentap::diag(tokentap::LogLevel::error, "startup failed", {{"error", e.what()}});
    tokentap::flush_diag_log();
    std::cerr << "tokentap: " << e.what() << "\n";
    return 1;
  }
}
