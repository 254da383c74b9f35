// RunLoadgen against a small in-process fake memcached whose replies can be
// split into tiny writes, stalled, or corrupted: reply matching across
// split reads, detection of wrong replies, batching of pipelined requests,
// silent idle connections, and open-loop latency counted from the schedule.

#include "tools/loadgen/loadgen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace loadgen {
namespace {

class FakeMemcached {
 public:
  struct Options {
    // > 0: write every reply in pieces of at most this many bytes, with a
    // pause between them, so the client sees replies split across reads.
    size_t max_chunk = 0;
    // Stall once for `stall` before answering request number `stall_at`.
    int64_t stall_at = -1;
    absl::Duration stall = absl::ZeroDuration();
    // Answer every hit with the wrong key.
    bool corrupt_keys = false;
    // > 0: answer only once exactly this many requests are buffered, and
    // record reads that did not hold exactly that many whole requests.
    int batch = 0;
  };

  explicit FakeMemcached(Options options) : options_(options) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), length), 0);
    EXPECT_EQ(listen(listen_fd_, 512), 0);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeMemcached() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : handlers_) t.join();
    for (int fd : fds_) close(fd);
    close(listen_fd_);
  }

  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  int silent_connections() const { return silent_.load(); }
  int64_t requests() const { return requests_.load(); }
  int bad_batches() const { return bad_batches_.load(); }
  int oversized_batches() const { return oversized_batches_.load(); }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      handlers_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Parses one complete command at the front of `in`; appends its reply.
  // Returns the bytes consumed, 0 if incomplete.
  size_t Execute(absl::string_view in, std::string* reply) {
    size_t eol = in.find("\r\n");
    if (eol == absl::string_view::npos) return 0;
    std::vector<absl::string_view> words =
        absl::StrSplit(in.substr(0, eol), ' ', absl::SkipEmpty());
    if (!words.empty() && words[0] == "get") {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 1; i < words.size(); ++i) {
        auto it = store_.find(words[i]);
        if (it == store_.end()) continue;
        std::string key(words[i]);
        if (options_.corrupt_keys) key[key.size() - 1] ^= 1;
        absl::StrAppend(reply, "VALUE ", key, " 0 ", it->second.size(), "\r\n",
                        it->second, "\r\n");
      }
      reply->append("END\r\n");
      return eol + 2;
    }
    if (words.size() == 5 && words[0] == "set") {
      size_t bytes;
      if (!absl::SimpleAtoi(words[4], &bytes)) return in.size();
      if (in.size() < eol + 2 + bytes + 2) return 0;
      std::lock_guard<std::mutex> lock(mu_);
      store_[words[1]] = std::string(in.substr(eol + 2, bytes));
      reply->append("STORED\r\n");
      return eol + 2 + bytes + 2;
    }
    reply->append("ERROR\r\n");
    return eol + 2;
  }

  void Send(int fd, const std::string& reply) {
    size_t pos = 0;
    size_t step = 1;
    while (pos < reply.size()) {
      size_t n = options_.max_chunk == 0 ? reply.size() - pos
                                         : std::min(reply.size() - pos, step);
      ssize_t w = send(fd, reply.data() + pos, n, MSG_NOSIGNAL);
      if (w <= 0) return;
      pos += static_cast<size_t>(w);
      if (options_.max_chunk > 0) {
        step = step % options_.max_chunk + 1;
        absl::SleepFor(absl::Microseconds(20));
      }
    }
  }

  void Serve(int fd) {
    std::string in;
    std::string reply;
    int pending = 0;
    bool spoke = false;
    char buffer[65536];
    while (true) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      spoke = true;
      in.append(buffer, static_cast<size_t>(n));
      int whole = 0;
      size_t used;
      while ((used = Execute(in, &reply)) > 0) {
        in.erase(0, used);
        ++whole;
        int64_t number = requests_++;
        if (number == options_.stall_at) absl::SleepFor(options_.stall);
      }
      if (options_.batch > 0) {
        pending += whole;
        if (whole != options_.batch || !in.empty()) ++bad_batches_;
        if (pending > options_.batch) ++oversized_batches_;
        if (pending < options_.batch) continue;
        pending = 0;
      }
      Send(fd, reply);
      reply.clear();
    }
    if (!spoke) ++silent_;
  }

  const Options options_;
  int listen_fd_;
  int port_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> silent_{0};
  std::atomic<int64_t> requests_{0};
  std::atomic<int> bad_batches_{0};
  std::atomic<int> oversized_batches_{0};
  std::thread acceptor_;
  // std::mutex, not absl::Mutex: Debian's absl is not built for TSan.
  std::mutex mu_;
  std::vector<std::thread> handlers_;
  std::vector<int> fds_;
  absl::flat_hash_map<std::string, std::string> store_;  // guarded by mu_
};

InterruptibleSleep PlainSleep() {
  return [](absl::Duration d) {
    absl::SleepFor(d);
    return false;
  };
}

LoadgenOptions SmallRun(int port) {
  LoadgenOptions o;
  o.port = port;
  o.connections = 4;
  o.threads = 2;
  o.keys = 200;
  o.key_size = 16;
  o.value_size = {10, 300};
  o.duration_s = 0.5;
  o.warmup_s = 0.1;
  o.connect_timeout_s = 10;
  return o;
}

TEST(LoadgenTest, MatchesRepliesSplitAcrossReads) {
  FakeMemcached::Options fake;
  fake.max_chunk = 7;
  FakeMemcached server(fake);
  LoadgenOptions o = SmallRun(server.port());
  o.prefill = true;
  o.prefill_pipeline = 8;
  o.pipeline = 4;
  o.multiget = 5;
  o.ratio = {3, 1};
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  const LoadStats& s = result->stats;
  EXPECT_EQ(s.prefill_stored, 200u);
  EXPECT_GT(s.gets, 0u);
  EXPECT_GT(s.sets, 0u);
  EXPECT_EQ(s.get_keys, 5 * s.gets);
  EXPECT_EQ(s.hits, s.get_keys);
  EXPECT_EQ(s.errors(), 0u) << result->ToText();
  EXPECT_EQ(s.load_connections, 4u);
  EXPECT_EQ(result->hit_check, LoadgenResult::HitCheck::kPassed);
  EXPECT_EQ(s.latency.count(), s.ops);
  EXPECT_GT(result->window_s, 0.45);
}

TEST(LoadgenTest, DetectsRepliesForTheWrongKey) {
  FakeMemcached::Options fake;
  fake.corrupt_keys = true;
  FakeMemcached server(fake);
  LoadgenOptions o = SmallRun(server.port());
  o.prefill = true;
  o.ratio = {1, 0};
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->stats.bad_replies, 0u);
  EXPECT_EQ(result->stats.hits, 0u);
  EXPECT_EQ(result->hit_check, LoadgenResult::HitCheck::kFailed);
}

TEST(LoadgenTest, MissesFailTheHitCheck) {
  FakeMemcached server({});
  LoadgenOptions o = SmallRun(server.port());
  o.expect_all_hits = true;  // but nothing was loaded
  o.ratio = {1, 0};
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.hits, 0u);
  EXPECT_GT(result->stats.misses, 0u);
  EXPECT_EQ(result->stats.errors(), 0u);
  EXPECT_EQ(result->hit_check, LoadgenResult::HitCheck::kFailed);
}

// --pipeline=N: N requests in one write, and nothing more until all N
// replies are in. The fake answers only once it holds exactly N requests.
TEST(LoadgenTest, PipelineSendsOneWriteAndWaitsForAllReplies) {
  FakeMemcached::Options fake;
  fake.batch = 16;
  FakeMemcached server(fake);
  LoadgenOptions o = SmallRun(server.port());
  o.connections = 3;
  o.threads = 1;
  o.pipeline = 16;
  o.multiget = 2;
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->stats.ops, 16u * 3);
  EXPECT_EQ(result->stats.errors(), 0u);
  EXPECT_EQ(server.bad_batches(), 0);
  EXPECT_EQ(server.oversized_batches(), 0);
}

TEST(LoadgenTest, IdleConnectionsStaySilent) {
  FakeMemcached server({});
  LoadgenOptions o = SmallRun(server.port());
  o.connections = 1;
  o.hold_idle = 40;
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.idle_connections, 40u);
  EXPECT_EQ(result->stats.idle_closed, 0u);
  // RunLoadgen has closed its connections; the fake notices silence then.
  for (int i = 0; i < 200 && server.silent_connections() < 40; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(server.connections(), 41);
  EXPECT_EQ(server.silent_connections(), 40);
}

// Open loop, 1000 requests/s on one connection; the server stalls 300 ms
// once. Requests scheduled during the stall must count their wait from the
// schedule: about 200 of them exceed 100 ms. A closed loop (coordinated
// omission) would report one slow request.
TEST(LoadgenTest, OpenLoopMeasuresFromTheScheduledTime) {
  FakeMemcached::Options fake;
  fake.stall_at = 800;  // 0.8 s in: inside the window
  fake.stall = absl::Milliseconds(300);
  FakeMemcached server(fake);
  LoadgenOptions o = SmallRun(server.port());
  o.connections = 1;
  o.threads = 1;
  o.rate = 1000;
  o.warmup_s = 0.3;
  o.duration_s = 1.5;
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  const LoadStats& s = result->stats;
  EXPECT_EQ(s.errors(), 0u);
  // Open loop: the count follows the schedule, not the server.
  EXPECT_NEAR(static_cast<double>(s.ops), 1500, 150) << result->ToText();
  uint64_t slow = 0;
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    if (LatencyHistogram::BucketLower(i) >= 100 * 1000 * 1000) {
      slow += s.latency.bucket_count(i);
    }
  }
  EXPECT_GT(slow, 150u) << result->ToText();
  // Not all: the schedule goes on after the stall. Loose, because on a
  // loaded machine (CI's sanitizer passes) the stall itself stretches.
  EXPECT_LT(slow, 450u) << result->ToText();
  EXPECT_GE(s.latency.max(), 250 * 1000 * 1000);
  EXPECT_GT(s.send_lag.count(), 0u);
}

TEST(LoadgenTest, InterruptEndsTheWindowEarlyAndKeepsResults) {
  FakeMemcached server({});
  LoadgenOptions o = SmallRun(server.port());
  o.duration_s = 60;
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, [](absl::Duration d) {
    // The 60 s sleep is the measured window: "Ctrl-C" 300 ms into it.
    if (d >= absl::Seconds(60)) {
      absl::SleepFor(absl::Milliseconds(300));
      return true;
    }
    absl::SleepFor(std::min(d, absl::Milliseconds(100)));
    return false;
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->interrupted);
  EXPECT_LT(result->window_s, 5);
  EXPECT_GT(result->stats.ops, 0u);
  EXPECT_NE(result->ToJson().find("\"interrupted\":true"), std::string::npos);
}

TEST(LoadgenTest, RejectsBadOptions) {
  LoadgenOptions o;
  o.rate = 100;
  o.pipeline = 4;
  EXPECT_FALSE(RunLoadgen(o, PlainSleep()).ok());
  o = LoadgenOptions();
  o.keys = 1000;
  o.key_size = 3;
  EXPECT_FALSE(ValidateOptions(o).ok());
  o = LoadgenOptions();
  o.connections = 0;
  EXPECT_FALSE(ValidateOptions(o).ok());
}

TEST(LoadgenTest, FailsWhenNobodyListens) {
  int port;
  {
    FakeMemcached server({});
    port = server.port();
  }
  LoadgenOptions o = SmallRun(port);
  absl::StatusOr<LoadgenResult> result = RunLoadgen(o, PlainSleep());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stats.connect_failures, 4u);
  EXPECT_EQ(result->stats.ops, 0u);
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard
