#include "server/integration/hostile_util.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace hostile {

int64_t ProcStatusBytes(pid_t pid, absl::string_view field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  const std::string prefix = absl::StrCat(field, ":");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, " kB");
    int64_t kb = 0;
    return absl::SimpleAtoi(rest, &kb) ? kb * kKiB : -1;
  }
  return -1;
}

void ExpectRssWithin(const ServerProcess& server, int64_t baseline,
                     int64_t allowance, absl::string_view what) {
  const int64_t rss = ProcStatusBytes(server.pid(), "VmRSS");
  const int64_t peak = ProcStatusBytes(server.pid(), "VmHWM");
  const int64_t bound = baseline + allowance;
  std::printf(
      "[%s] server RSS: baseline %.1f MiB, now %.1f MiB, peak %.1f MiB, "
      "bound %.1f MiB%s\n",
      std::string(what).c_str(), baseline / double{kMiB}, rss / double{kMiB},
      peak / double{kMiB}, bound / double{kMiB},
      kSanitized ? " (not checked: sanitized build)" : "");
  std::fflush(stdout);
  ASSERT_GT(rss, 0) << "cannot read VmRSS of " << server.pid();
  ASSERT_GT(peak, 0) << "cannot read VmHWM of " << server.pid();
  if (kSanitized) return;
  EXPECT_LE(rss, bound) << what << ": RSS is " << (rss - baseline) / kKiB
                        << " KiB over the baseline";
  EXPECT_LE(peak, bound) << what << ": peak RSS was "
                         << (peak - baseline) / kKiB
                         << " KiB over the baseline";
}

std::string LatencyReport::ToString() const {
  return absl::StrFormat(
      "%d requests, %d failed, p50 %s, p99 %s, max %s%s%s", requests, failures,
      absl::FormatDuration(p50), absl::FormatDuration(p99),
      absl::FormatDuration(max),
      first_failure.empty() ? "" : "; first: ", first_failure);
}

WellBehavedClient::WellBehavedClient(int port, absl::string_view name,
                                     absl::string_view credentials)
    : port_(port), name_(name), credentials_(credentials) {
  thread_ = std::thread([this] { Run(); });
}

WellBehavedClient::~WellBehavedClient() { Stop(); }

void WellBehavedClient::Run() {
  std::unique_ptr<BlockingClient> client;
  int i = 0;
  while (!stop_.load()) {
    std::string what;
    if (client == nullptr) {
      auto connected = BlockingClient::ConnectTcp(port_, kRequestTimeout);
      if (!connected.ok()) {
        what = absl::StrCat("connect: ", connected.status().ToString());
      } else {
        client = *std::move(connected);
        if (!credentials_.empty()) {
          absl::Status sent =
              client->TrySend(absl::StrCat("set auth 0 0 ", credentials_.size(),
                                           "\r\n", credentials_, "\r\n"));
          absl::StatusOr<std::string> reply =
              sent.ok() ? client->TryReadLine()
                        : absl::StatusOr<std::string>(sent);
          if (!reply.ok() || *reply != "STORED") {
            what = absl::StrCat(
                "auth: ", reply.ok() ? *reply : reply.status().ToString());
            client.reset();
          }
        }
      }
    }
    if (client != nullptr && Round(*client, i++, &what)) {
      absl::SleepFor(absl::Milliseconds(1));
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++failures_;
      if (first_failure_.empty()) first_failure_ = what;
    }
    // The connection's state is unknown after a failure: start afresh.
    client.reset();
    absl::SleepFor(absl::Milliseconds(10));
  }
}

bool WellBehavedClient::Round(BlockingClient& client, int i,
                              std::string* what) {
  const std::string key = absl::StrCat(name_, "-", i % 32);
  const std::string value = absl::StrCat("value-", i, "-of-", name_);
  auto timed = [&](absl::string_view request, absl::string_view expected,
                   bool multi_line) -> bool {
    const absl::Time start = absl::Now();
    absl::Status sent = client.TrySend(request);
    absl::StatusOr<std::string> reply =
        !sent.ok()   ? absl::StatusOr<std::string>(sent)
        : multi_line ? client.TryReadUntil("END\r\n")
                     : client.TryReadLine();
    const absl::Duration latency = absl::Now() - start;
    requests_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      latencies_.push_back(latency);
    }
    if (!reply.ok()) {
      *what =
          absl::StrCat(request.substr(0, 30), ": ", reply.status().ToString(),
                       " after ", absl::FormatDuration(latency));
      return false;
    }
    if (*reply != expected) {
      *what = absl::StrCat(request.substr(0, 30), ": got \"", *reply,
                           "\", expected \"", expected, "\"");
      return false;
    }
    return true;
  };
  return timed(absl::StrCat("set ", key, " 0 0 ", value.size(), "\r\n", value,
                            "\r\n"),
               "STORED", false) &&
         timed(absl::StrCat("get ", key, "\r\n"),
               absl::StrCat("VALUE ", key, " 0 ", value.size(), "\r\n", value,
                            "\r\nEND\r\n"),
               true);
}

LatencyReport WellBehavedClient::Stop() {
  if (stopped_) return report_;
  stopped_ = true;
  stop_.store(true);
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  report_.requests = static_cast<int64_t>(latencies_.size());
  report_.failures = failures_;
  report_.first_failure = first_failure_;
  if (!latencies_.empty()) {
    std::sort(latencies_.begin(), latencies_.end());
    auto at = [&](double q) {
      size_t index = static_cast<size_t>(q * (latencies_.size() - 1));
      return latencies_[index];
    };
    report_.p50 = at(0.50);
    report_.p99 = at(0.99);
    report_.max = latencies_.back();
  }
  return report_;
}

void ExpectUnaffected(WellBehavedClient& client, absl::string_view what) {
  const LatencyReport report = client.Stop();
  std::printf("[%s] well-behaved client: %s\n", std::string(what).c_str(),
              report.ToString().c_str());
  std::fflush(stdout);
  EXPECT_EQ(report.failures, 0)
      << what << ": the well-behaved client failed: " << report.first_failure;
  // Enough samples for a p99 to mean something.
  EXPECT_GE(report.requests, 200) << what;
  // A sanitized server runs several times slower: its p99 is printed only.
  if (kSanitized) return;
  EXPECT_LT(report.p99, kP99Budget)
      << what << ": the well-behaved client's p99 is over budget ("
      << report.ToString() << ")";
}

void HostileTest::StartServer(const std::vector<std::string>& args,
                              absl::string_view credentials) {
  std::vector<std::string> all = {"--workers=1", "--pin_workers=false"};
  all.insert(all.end(), args.begin(), args.end());
  auto server = ServerProcess::StartMemshard(all);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  good_ =
      std::make_unique<WellBehavedClient>(server_->port(), "good", credentials);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (good_->requests() < 100 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GE(good_->requests(), 100) << "the well-behaved client is stuck";
  absl::SleepFor(absl::Milliseconds(200));
  baseline_rss_ = std::max(ProcStatusBytes(server_->pid(), "VmRSS"),
                           ProcStatusBytes(server_->pid(), "VmHWM"));
  ASSERT_GT(baseline_rss_, 0);
}

void HostileTest::ExpectServerUnharmed(absl::string_view what,
                                       int64_t rss_allowance) {
  ASSERT_NE(server_, nullptr);
  ASSERT_NE(good_, nullptr);
  ExpectUnaffected(*good_, what);
  EXPECT_TRUE(server_->IsRunning())
      << what << ": memshard died: " << server_->ReadLog();
  if (!server_->IsRunning()) return;
  ExpectRssWithin(*server_, baseline_rss_, rss_allowance, what);
}

std::unique_ptr<BlockingClient> HostileTest::Connect(absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<BlockingClient>> client =
      server_->Connect(timeout);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

int RepeatFor(absl::Duration duration, absl::FunctionRef<void()> round) {
  const absl::Time end = absl::Now() + duration;
  int rounds = 0;
  do {
    round();
    ++rounds;
  } while (absl::Now() < end && !::testing::Test::HasFatalFailure());
  return rounds;
}

std::string BinaryHeader(uint8_t magic, uint8_t opcode, uint16_t key_length,
                         uint8_t extras_length, uint32_t body_length,
                         uint32_t opaque) {
  char h[24] = {};
  h[0] = static_cast<char>(magic);
  h[1] = static_cast<char>(opcode);
  absl::big_endian::Store16(h + 2, key_length);
  h[4] = static_cast<char>(extras_length);
  absl::big_endian::Store32(h + 8, body_length);
  absl::big_endian::Store32(h + 12, opaque);
  return std::string(h, sizeof(h));
}

absl::StatusOr<BinaryReply> ReadBinaryReply(BlockingClient& client) {
  absl::StatusOr<std::string> header = client.TryReadExactly(24);
  if (!header.ok()) return header.status();
  const char* h = header->data();
  BinaryReply reply;
  reply.magic = static_cast<uint8_t>(h[0]);
  reply.opcode = static_cast<uint8_t>(h[1]);
  reply.status = absl::big_endian::Load16(h + 6);
  reply.opaque = absl::big_endian::Load32(h + 12);
  const uint32_t body_length = absl::big_endian::Load32(h + 8);
  if (body_length > 0) {
    absl::StatusOr<std::string> body = client.TryReadExactly(body_length);
    if (!body.ok()) return body.status();
    reply.body = *std::move(body);
  }
  return reply;
}

}  // namespace hostile
}  // namespace memshard
