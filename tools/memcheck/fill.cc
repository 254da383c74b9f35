#include "tools/memcheck/fill.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "testing/blocking_client.h"

namespace memshard::memcheck {
namespace {

// Bytes of commands gathered before one write.
constexpr size_t kBatchBytes = 1 << 20;
constexpr absl::Duration kTimeout = absl::Seconds(60);

std::string Key(uint64_t index, uint32_t size) {
  std::string digits = absl::StrCat(index);
  std::string key = "k";
  if (digits.size() + 1 < size) key.append(size - 1 - digits.size(), '0');
  key += digits;
  return key;
}

absl::Status RoundTrip(BlockingClient& client) {
  absl::Status sent = client.TrySend("version\r\n");
  if (!sent.ok()) return sent;
  absl::StatusOr<std::string> line = client.TryReadLine();
  if (!line.ok()) return line.status();
  if (!absl::StartsWith(*line, "VERSION ")) {
    return absl::InternalError(absl::StrCat("unexpected reply: ", *line));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> SettledRss(const ServerProcess& server) {
  absl::StatusOr<std::unique_ptr<BlockingClient>> client =
      BlockingClient::ConnectTcp(server.port(), kTimeout);
  if (!client.ok()) return client.status();
  absl::Status s = RoundTrip(**client);
  if (!s.ok()) return s;
  return server.RssBytes();
}

absl::StatusOr<FillResult> Fill(const ServerProcess& server,
                                const FillOptions& options) {
  if (options.value_bytes == 0 && options.items == 0) {
    return absl::InvalidArgumentError("set value_bytes or items");
  }
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < std::max(1, options.connections); ++i) {
    absl::StatusOr<std::unique_ptr<BlockingClient>> client =
        BlockingClient::ConnectTcp(server.port(), kTimeout);
    if (!client.ok()) return client.status();
    clients.push_back(*std::move(client));
  }
  std::mt19937_64 random(options.seed);
  const double log_min = std::log(std::max<double>(1, options.min_value_size));
  const double log_max = std::log(std::max<double>(1, options.max_value_size));
  std::uniform_real_distribution<double> log_size(log_min, log_max);
  const std::string filler(options.max_value_size, 'v');

  FillResult result;
  auto sample = [&]() -> absl::Status {
    for (auto& client : clients) {
      absl::Status s = RoundTrip(*client);
      if (!s.ok()) return s;
    }
    const int64_t rss = server.RssBytes();
    if (rss < 0) return absl::InternalError("cannot read the server's RSS");
    result.final_rss = rss;
    result.peak_rss = std::max(result.peak_rss, rss);
    return absl::OkStatus();
  };

  std::string batch;
  size_t next_client = 0;
  uint64_t since_sample = 0;
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    absl::Status s = clients[next_client]->TrySend(batch);
    next_client = (next_client + 1) % clients.size();
    since_sample += batch.size();
    batch.clear();
    if (!s.ok()) return s;
    if (since_sample >= options.sample_every_bytes) {
      since_sample = 0;
      return sample();
    }
    return absl::OkStatus();
  };

  while (
      (options.items == 0 || result.items < options.items) &&
      (options.value_bytes == 0 || result.value_bytes < options.value_bytes)) {
    uint32_t size = options.min_value_size;
    if (options.max_value_size > options.min_value_size) {
      size = static_cast<uint32_t>(std::lround(std::exp(log_size(random))));
      size = std::clamp(size, options.min_value_size, options.max_value_size);
    }
    absl::StrAppend(&batch, "set ",
                    Key(options.first_key + result.items, options.key_size),
                    " 0 0 ", size, " noreply\r\n");
    batch.append(filler.data(), size);
    batch.append("\r\n");
    ++result.items;
    result.value_bytes += size;
    if (batch.size() >= kBatchBytes) {
      absl::Status s = flush();
      if (!s.ok()) return s;
    }
  }
  absl::Status s = flush();
  if (!s.ok()) return s;
  s = sample();
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartMemshardAt(
    const std::string& binary, const std::vector<std::string>& args,
    const std::vector<std::string>& env) {
  ServerProcess::Options options;
  options.port_file = TestTempPath("memcheck_port");
  // --admin_port=0 (off), as ServerProcess::StartMemshard does.
  std::vector<std::string> argv = {
      "--listen=127.0.0.1", "--port=0",
      absl::StrCat("--port_file=", options.port_file), "--admin_port=0"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (env.empty()) {
    options.binary = binary;
    options.args = std::move(argv);
  } else {
    // env(1) execs the server in place: the pid stays the server's.
    options.binary = "/usr/bin/env";
    options.args = env;
    options.args.push_back(binary);
    options.args.insert(options.args.end(), argv.begin(), argv.end());
  }
  return ServerProcess::Start(std::move(options));
}

}  // namespace memshard::memcheck
