// The real memshard binary with several workers, hammered by concurrent
// clients on overlapping keys: every text and meta storage command, counters,
// multigets, flushes, expiry (the per-worker sweepers), eviction (the cache is
// kept at its budget) and, meanwhile, stats and Prometheus scrapes that read
// every worker's metrics from other threads.
//
// Built for --config=tsan (and asan): the server under test is built with the
// same sanitizer, ServerProcess fails the test on any report in its log, and
// the server must exit cleanly on SIGTERM so LeakSanitizer gets to run. The
// replies are checked for shape only (concurrent writers make exact values
// unknowable): a value is always its key repeated, a counter is a number.

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

constexpr int kWorkers = 4;
constexpr size_t kLoadClients = 6;  // at least
constexpr int kBlobKeys = 1500;
constexpr int kCounterKeys = 16;
constexpr int kMaxRepeat = 150;  // a value is at most 150 keys long
constexpr absl::Duration kLoadTime = absl::Milliseconds(2500);

std::string BlobKey(int i) { return absl::StrCat("blob:", i, ":"); }
std::string CounterKey(int i) { return absl::StrCat("ctr:", i); }

std::string Repeat(absl::string_view key, int n) {
  std::string value;
  for (int i = 0; i < n; ++i) absl::StrAppend(&value, key);
  return value;
}

// Every blob value is its key repeated at least once; anything else is a torn
// or mixed-up item.
bool IsBlobValue(absl::string_view key, absl::string_view value) {
  if (value.empty() || value.size() % key.size() != 0) return false;
  for (size_t i = 0; i < value.size(); i += key.size()) {
    if (value.substr(i, key.size()) != key) return false;
  }
  return true;
}

// A counter: decimal digits, maybe space-padded at the end after a decr
// shortened it (memcached does that, protocol.txt "incr/decr").
bool IsNumber(absl::string_view s) {
  uint64_t n;
  return !s.empty() && absl::ascii_isdigit(s[0]) &&
         absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(s), &n);
}

std::string ReadFile(const std::string& path) {
  std::string text;
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return text;
  char buffer[256];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  fclose(f);
  return text;
}

// One load client: a connection and a log of what was wrong, so the threads
// report through the test thread (gtest assertions are thread-safe, but one
// message per client reads better than thousands).
class LoadClient {
 public:
  LoadClient(std::unique_ptr<BlockingClient> client, int seed)
      : client_(std::move(client)), rng_(seed) {}

  // Runs random commands until `deadline`; returns the number sent.
  int Run(absl::Time deadline) {
    int ops = 0;
    while (absl::Now() < deadline && errors_.empty()) {
      OneCommand(ops);
      ++ops;
    }
    return ops;
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Error(absl::string_view command, absl::string_view reply) {
    errors_.push_back(absl::StrCat("'", absl::CEscape(command), "' -> '",
                                   absl::CEscape(reply), "'"));
  }

  // `reply` must be one of `allowed`.
  void Expect(absl::string_view command, absl::string_view reply,
              std::initializer_list<absl::string_view> allowed) {
    for (absl::string_view a : allowed) {
      if (reply == a) return;
    }
    Error(command, reply);
  }

  // Reads "VALUE <key> <flags> <bytes>[ <cas>]" blocks up to "END" and checks
  // each value with `valid`.
  template <typename Valid>
  void ReadValues(absl::string_view command, Valid valid) {
    for (int i = 0; i < 64; ++i) {
      std::string line = client_->ReadLine();
      if (line == "END") return;
      std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
      size_t bytes;
      if (parts.size() < 4 || parts[0] != "VALUE" ||
          !absl::SimpleAtoi(parts[3], &bytes)) {
        return Error(command, line);
      }
      std::string data = client_->ReadExactly(bytes + 2);
      if (data.size() != bytes + 2 || !absl::EndsWith(data, "\r\n") ||
          !valid(parts[1], absl::string_view(data).substr(0, bytes))) {
        return Error(command, absl::StrCat(line, " / ", data));
      }
    }
    Error(command, "no END");
  }

  void CheckBlobs(absl::string_view command) {
    ReadValues(command, [](absl::string_view key, absl::string_view value) {
      return IsBlobValue(key, value);
    });
  }

  void CheckCounters(absl::string_view command) {
    ReadValues(command, [](absl::string_view, absl::string_view value) {
      return IsNumber(value);
    });
  }

  std::string Store(absl::string_view verb, absl::string_view key,
                    absl::string_view value, int exptime) {
    std::string command = absl::StrCat(verb, " ", key, " ", rng_() % 4, " ",
                                       exptime, " ", value.size());
    return client_->Command(absl::StrCat(command, "\r\n", value));
  }

  void OneCommand(int op) {
    const std::string key = BlobKey(rng_() % kBlobKeys);
    const std::string counter = CounterKey(rng_() % kCounterKeys);
    // One in four blobs expires after a second, for the sweepers.
    const int exptime = rng_() % 4 == 0 ? 1 : 0;
    const int repeat = 1 + rng_() % kMaxRepeat;
    std::string reply;
    switch (rng_() % 20) {
      case 0:
      case 1:
      case 2:
        reply = Store("set", key, Repeat(key, repeat), exptime);
        return Expect("set", reply, {"STORED"});
      case 3:
        reply = Store("add", key, Repeat(key, repeat), exptime);
        return Expect("add", reply, {"STORED", "NOT_STORED"});
      case 4:
        reply = Store("replace", key, Repeat(key, repeat), exptime);
        return Expect("replace", reply, {"STORED", "NOT_STORED"});
      case 5:
        reply = Store(rng_() % 2 ? "append" : "prepend", key, key, 0);
        return Expect("append/prepend", reply, {"STORED", "NOT_STORED"});
      case 6: {
        // gets, then cas with the unique it returned (someone may have
        // changed or removed the item in between).
        const std::string gets = absl::StrCat("gets ", key);
        std::string line = client_->Command(gets);
        if (line == "END") return;
        std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
        size_t bytes;
        if (parts.size() != 5 || parts[0] != "VALUE" ||
            !absl::SimpleAtoi(parts[3], &bytes) || !IsNumber(parts[4])) {
          return Error(gets, line);
        }
        std::string data = client_->ReadExactly(bytes + 2);
        if (!IsBlobValue(key, absl::string_view(data).substr(0, bytes))) {
          return Error(gets, data);
        }
        if (std::string end = client_->ReadLine(); end != "END") {
          return Error(gets, end);
        }
        const std::string value = Repeat(key, repeat);
        reply = client_->Command(absl::StrCat("cas ", key, " 0 ", exptime, " ",
                                              value.size(), " ", parts[4],
                                              "\r\n", value));
        return Expect("cas", reply, {"STORED", "EXISTS", "NOT_FOUND"});
      }
      case 7: {
        // A multiget over blobs, one repeated.
        std::string command =
            absl::StrCat(rng_() % 2 ? "get" : "gets", " ", key, " ", key);
        for (int i = 0; i < 6; ++i) {
          absl::StrAppend(&command, " ", BlobKey(rng_() % kBlobKeys));
        }
        client_->Send(absl::StrCat(command, "\r\n"));
        return CheckBlobs(command);
      }
      case 8:
      case 9: {
        const std::string command = absl::StrCat("get ", key);
        client_->Send(absl::StrCat(command, "\r\n"));
        return CheckBlobs(command);
      }
      case 10:
        reply = client_->Delete(key);
        return Expect("delete", reply, {"DELETED", "NOT_FOUND"});
      case 11:
        reply = client_->Command(absl::StrCat("touch ", key, " ", exptime));
        return Expect("touch", reply, {"TOUCHED", "NOT_FOUND"});
      case 12: {
        const std::string command =
            absl::StrCat(rng_() % 2 ? "gat " : "gats ", exptime, " ", key);
        client_->Send(absl::StrCat(command, "\r\n"));
        return CheckBlobs(command);
      }
      case 13: {
        // Counters: incr/decr, (re)created by set or add.
        const std::string verb = rng_() % 3 ? "incr " : "decr ";
        reply = client_->Command(absl::StrCat(verb, counter, " ", rng_() % 5));
        if (reply == "NOT_FOUND") {
          reply = Store(rng_() % 2 ? "set" : "add", counter, "100", 0);
          return Expect("set/add counter", reply, {"STORED", "NOT_STORED"});
        }
        if (!IsNumber(reply)) Error(verb, reply);
        return;
      }
      case 14: {
        // Arithmetic on a blob must fail cleanly, never corrupt it.
        reply = client_->Command(absl::StrCat("incr ", key, " 1"));
        return Expect(
            "incr blob", reply,
            {"NOT_FOUND",
             "CLIENT_ERROR cannot increment or decrement non-numeric value"});
      }
      case 15: {
        const std::string command = absl::StrCat("get ", counter);
        client_->Send(absl::StrCat(command, "\r\n"));
        return CheckCounters(command);
      }
      case 16: {
        // Meta get with value, cas, ttl and hit flags.
        const std::string command = absl::StrCat("mg ", key, " v c t h l k");
        std::string line = client_->Command(command);
        // A miss: "EN", with the k flag echoed ("EN k<key>") as memcached
        // 1.6.18 does.
        if (line == "EN" || absl::StartsWith(line, "EN ")) return;
        std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
        size_t bytes;
        if (parts.size() < 2 || parts[0] != "VA" ||
            !absl::SimpleAtoi(parts[1], &bytes)) {
          return Error(command, line);
        }
        std::string data = client_->ReadExactly(bytes + 2);
        if (!IsBlobValue(key, absl::string_view(data).substr(0, bytes))) {
          Error(command, data);
        }
        return;
      }
      case 17: {
        const std::string value = Repeat(key, repeat);
        const char* mode = rng_() % 2 ? "S" : "A";  // set or append
        reply =
            client_->Command(absl::StrCat("ms ", key, " ", value.size(), " T",
                                          exptime, " M", mode, "\r\n", value));
        return Expect("ms", reply, {"HD", "NS"});
      }
      case 18: {
        if (rng_() % 2) {
          // Quiet delete: success says nothing, so "mn" marks the end. NF
          // may or may not be shown (memcached hides it in quiet mode).
          reply = client_->Command(absl::StrCat("md ", key, " q\r\nmn"));
          if (reply == "NF") reply = client_->ReadLine();
          return Expect("md q; mn", reply, {"MN"});
        }
        reply = client_->Command(absl::StrCat("ma ", counter, " N0 J7"));
        if (reply == "HD" || reply == "NF") return;
        return Error("ma", reply);
      }
      default:
        // Rarely, a flush: everything before it is invalidated on every
        // worker and every stripe at once.
        if (op % 200 == 199) {
          reply = client_->Command(rng_() % 2 ? "flush_all" : "flush_all 1");
          return Expect("flush_all", reply, {"OK"});
        }
        reply = client_->Command("mn");
        return Expect("mn", reply, {"MN"});
    }
  }

  std::unique_ptr<BlockingClient> client_;
  std::mt19937 rng_;
  std::vector<std::string> errors_;
};

// Sums "stats workers" lines "<worker>:<name> <value>" per worker.
std::vector<int64_t> PerWorker(const StatsMap& stats, absl::string_view name) {
  std::vector<int64_t> values(kWorkers, 0);
  for (int w = 0; w < kWorkers; ++w) {
    auto it = stats.find(absl::StrCat(w, ":", name));
    if (it != stats.end()) absl::SimpleAtoi(it->second, &values[w]);
  }
  return values;
}

TEST(MultiWorkerCacheTest, ConcurrentClientsOnEveryWorker) {
  const std::string admin_port_file = TestTempPath("admin_port");
  auto started = ServerProcess::StartMemshard(
      {absl::StrCat("--workers=", kWorkers), "--memory_limit_mb=1",
       "--max_item_size=4096", "--admin_port=-1",
       absl::StrCat("--admin_port_file=", admin_port_file)});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ServerProcess> server = *std::move(started);
  int admin_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(admin_port_file)), &admin_port));

  // Fill past the 1 MiB budget first, so every store during the load evicts.
  {
    auto filler = server->Connect();
    ASSERT_TRUE(filler.ok()) << filler.status();
    for (int i = 0; i < kBlobKeys; ++i) {
      const std::string key = BlobKey(i);
      ASSERT_EQ((*filler)->Set(key, Repeat(key, kMaxRepeat)), "STORED");
    }
    ASSERT_GT(StatInt(server->Stats(), "evictions"), 0);
  }

  // Connections spread over the workers by SO_REUSEPORT hashing. Each new
  // connection's worker is the one whose total_connections went up (asked
  // over one long-lived stats connection, so nothing else connects
  // meanwhile); open connections until they span at least two workers.
  auto stats_client = server->Connect();
  ASSERT_TRUE(stats_client.ok()) << stats_client.status();
  std::vector<std::unique_ptr<BlockingClient>> connections;
  std::vector<int> per_worker(kWorkers, 0);
  auto spanned = [&] {
    return std::count_if(per_worker.begin(), per_worker.end(),
                         [](int n) { return n > 0; });
  };
  while (connections.size() < 64 &&
         (connections.size() < kLoadClients || spanned() < 2)) {
    const std::vector<int64_t> before =
        PerWorker((*stats_client)->Stats("workers"), "total_connections");
    auto client = server->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_EQ((*client)->Command("version").substr(0, 8), "VERSION ");
    connections.push_back(*std::move(client));
    const std::vector<int64_t> after =
        PerWorker((*stats_client)->Stats("workers"), "total_connections");
    for (int w = 0; w < kWorkers; ++w) per_worker[w] += after[w] - before[w];
  }
  ASSERT_GE(spanned(), 2) << connections.size()
                          << " connections, all on one worker";
  stats_client->reset();

  std::vector<std::unique_ptr<LoadClient>> clients;
  for (size_t i = 0; i < connections.size(); ++i) {
    clients.push_back(
        std::make_unique<LoadClient>(std::move(connections[i]), i + 1));
  }
  const absl::Time deadline = absl::Now() + kLoadTime;
  std::vector<int> ops(clients.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] { ops[i] = clients[i]->Run(deadline); });
  }

  // Meanwhile: every stats group and Prometheus scrapes, each a cross-thread
  // read of every worker's metrics; and "stats reset" now and then.
  std::atomic<int> observer_failures{0};
  std::thread observer([&] {
    auto stats = server->Connect();
    if (!stats.ok()) {
      ++observer_failures;
      return;
    }
    for (int round = 0; absl::Now() < deadline; ++round) {
      for (const char* group :
           {"", "workers", "conns", "settings", "latency", "items", "slabs"}) {
        (*stats)->Stats(group);
      }
      if (round % 10 == 9) {
        if ((*stats)->Command("stats reset") != "RESET") ++observer_failures;
      }
      auto http = BlockingClient::ConnectTcp(admin_port);
      if (!http.ok() || !(*http)->Send("GET /metrics HTTP/1.0\r\n\r\n") ||
          !absl::StartsWith((*http)->ReadUntil("\r\n\r\n"), "HTTP/1.")) {
        ++observer_failures;
      }
    }
  });
  for (std::thread& t : threads) t.join();
  observer.join();
  EXPECT_EQ(observer_failures.load(), 0);

  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_GT(ops[i], 50) << "client " << i << " was starved";
    for (const std::string& e : clients[i]->errors()) {
      ADD_FAILURE() << "client " << i << ": " << e;
    }
  }

  // Afterwards every item left is intact.
  auto checker = server->Connect();
  ASSERT_TRUE(checker.ok()) << checker.status();
  for (int i = 0; i < kBlobKeys; ++i) {
    const std::string key = BlobKey(i);
    std::optional<std::string> value = (*checker)->Get(key);
    if (value.has_value()) {
      EXPECT_TRUE(IsBlobValue(key, *value)) << key;
    }
  }

  // SIGTERM: a clean exit (status 0), after which LeakSanitizer has run and
  // the log holds no sanitizer report (Stop() checks).
  const int status = server->Stop(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeWaitStatus(status);
}

}  // namespace
}  // namespace memshard
