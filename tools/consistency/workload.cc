#include "tools/consistency/workload.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/consistency/text_client.h"

namespace memshard::consistency {
namespace {

constexpr size_t kMaxErrorSamples = 5;
constexpr char kNonNumericReply[] =
    "CLIENT_ERROR cannot increment or decrement non-numeric value";

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

enum class Kind {
  kGet,
  kGets,
  kMultiGets,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kIncr,
  kDecr,
  kDelete,
};

struct Weighted {
  Kind kind;
  int weight;
};

// Percent of requests. Roughly half write; cas is frequent so that tokens
// race.
constexpr Weighted kMix[] = {
    {Kind::kGet, 10},   {Kind::kGets, 14},   {Kind::kMultiGets, 6},
    {Kind::kSet, 14},   {Kind::kAdd, 6},     {Kind::kReplace, 5},
    {Kind::kAppend, 7}, {Kind::kPrepend, 3}, {Kind::kCas, 14},
    {Kind::kIncr, 8},   {Kind::kDecr, 5},    {Kind::kDelete, 8},
};

// What went wrong with a request, for the error count.
struct Failure {
  absl::Status status;
  // Unavailable / DeadlineExceeded: no reply at all. Otherwise a reply came
  // but made no sense.
  bool replied() const {
    return !absl::IsUnavailable(status) && !absl::IsDeadlineExceeded(status);
  }
};

// One client thread's share of the workload.
class ClientRun {
 public:
  ClientRun(int client, const WorkloadOptions& options,
            const std::vector<std::string>& keys,
            std::unique_ptr<TextConnection> connection)
      : client_(client),
        options_(options),
        keys_(keys),
        connection_(std::move(connection)),
        random_(options.seed * 1000003ull + client),
        last_token_(keys.size()) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const size_t n = std::max(options.large_value_size, options.max_padding) +
                     sizeof(kAlphabet);
    while (pattern_.size() < n) pattern_ += kAlphabet;
  }

  // The random phase: requests until `next` reaches options.requests.
  void Run(std::atomic<uint64_t>* next) {
    int total = 0;
    for (const Weighted& w : kMix) total += w.weight;
    while (next->fetch_add(1) < options_.requests) {
      int pick = std::uniform_int_distribution<int>(0, total - 1)(random_);
      Kind kind = kMix[0].kind;
      for (const Weighted& w : kMix) {
        if (pick < w.weight) {
          kind = w.kind;
          break;
        }
        pick -= w.weight;
      }
      ++requests_;
      if (!Do(kind)) return;
    }
  }

  // Reads every key once, one request each.
  void ReadAll() {
    for (uint32_t key = 0; key < keys_.size(); ++key) {
      ++requests_;
      if (!Read(OpType::kGets, {key})) return;
    }
  }

  std::vector<Op>& ops() { return ops_; }
  uint64_t requests() const { return requests_; }
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  uint32_t RandomKey() {
    return std::uniform_int_distribution<uint32_t>(0,
                                                   keys_.size() - 1)(random_);
  }
  uint32_t Percent() {
    return std::uniform_int_distribution<uint32_t>(0, 99)(random_);
  }

  // False once the connection is unusable.
  bool Do(Kind kind) {
    switch (kind) {
      case Kind::kGet:
        return Read(OpType::kGet, {RandomKey()});
      case Kind::kGets:
        return Read(OpType::kGets, {RandomKey()});
      case Kind::kMultiGets: {
        std::vector<uint32_t> keys;
        const size_t n = std::min<size_t>(keys_.size(), 2 + Percent() % 3);
        while (keys.size() < n) {
          const uint32_t k = RandomKey();
          if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
            keys.push_back(k);
          }
        }
        return Read(Percent() < 50 ? OpType::kGet : OpType::kGets, keys);
      }
      case Kind::kSet:
        return Store(OpType::kSet);
      case Kind::kAdd:
        return Store(OpType::kAdd);
      case Kind::kReplace:
        return Store(OpType::kReplace);
      case Kind::kAppend:
        return Store(OpType::kAppend);
      case Kind::kPrepend:
        return Store(OpType::kPrepend);
      case Kind::kCas: {
        // Mostly a fresh gets first, so that cas races with live tokens.
        const uint32_t key = RandomKey();
        if (Percent() < 60) {
          ++requests_;
          if (!Read(OpType::kGets, {key})) return false;
        }
        return Store(OpType::kCas, key);
      }
      case Kind::kIncr:
        return Delta(OpType::kIncr);
      case Kind::kDecr:
        return Delta(OpType::kDecr);
      case Kind::kDelete:
        return Delete();
    }
    return false;
  }

  Op NewOp(OpType type, uint32_t key) {
    Op op;
    op.client = client_;
    op.key = key;
    op.type = type;
    return op;
  }

  // Records the ops of a request that failed, and stops this client.
  bool Fail(std::vector<Op> ops, absl::Status status) {
    Failure failure{std::move(status)};
    for (Op& op : ops) {
      op.outcome = Outcome::kUnknown;
      if (!failure.replied()) op.respond_ns = Op::kNoResponse;
      ops_.push_back(std::move(op));
    }
    failure_ = std::move(failure);
    return false;
  }

  bool Read(OpType type, const std::vector<uint32_t>& keys) {
    std::vector<Op> ops;
    std::string request = type == OpType::kGets ? "gets" : "get";
    for (uint32_t key : keys) {
      ops.push_back(NewOp(type, key));
      absl::StrAppend(&request, " ", keys_[key]);
    }
    request += "\r\n";
    const int64_t invoke = NowNs();
    for (Op& op : ops) op.invoke_ns = invoke;
    absl::Status sent = connection_->Send(request);
    absl::StatusOr<std::vector<TextValue>> values =
        sent.ok() ? connection_->ReadValues()
                  : absl::StatusOr<std::vector<TextValue>>(sent);
    const int64_t respond = NowNs();
    for (Op& op : ops) op.respond_ns = respond;
    if (!values.ok()) return Fail(std::move(ops), values.status());
    for (Op& op : ops) op.outcome = Outcome::kMiss;
    for (TextValue& v : *values) {
      auto it = std::find_if(ops.begin(), ops.end(), [&](const Op& op) {
        return keys_[op.key] == v.key;
      });
      if (it == ops.end() || it->outcome != Outcome::kMiss ||
          v.has_cas != (type == OpType::kGets)) {
        return Fail(std::move(ops),
                    absl::InternalError(absl::StrCat("unexpected VALUE ", v.key,
                                                     " for: ", request)));
      }
      it->outcome = Outcome::kHit;
      it->value = std::move(v.data);
      it->flags = v.flags;
      it->cas = v.cas;
    }
    for (Op& op : ops) {
      if (type == OpType::kGets) {
        last_token_[op.key] = op.outcome == Outcome::kHit
                                  ? std::optional<uint64_t>(op.cas)
                                  : std::nullopt;
      }
      ops_.push_back(std::move(op));
    }
    return true;
  }

  // A unique value: numeric (for incr/decr) or a string tag with padding.
  std::string NewValue() {
    const uint64_t seq = ++sequence_;
    if (Percent() < 50) {
      return absl::StrCat(1000000000000000ull +
                          (seq * 128 + client_) * 1000000ull + 500000);
    }
    std::string value = absl::StrCat("s", client_, ".", seq, ":");
    uint32_t padding = std::uniform_int_distribution<uint32_t>(
        0, options_.max_padding)(random_);
    if (Percent() == 0) {
      padding = std::uniform_int_distribution<uint32_t>(
          0, options_.large_value_size)(random_);
    }
    value.append(pattern_, seq % 36, padding);
    return value;
  }

  bool Store(OpType type) { return Store(type, RandomKey()); }

  bool Store(OpType type, uint32_t key_index) {
    Op op = NewOp(type, key_index);
    const std::string& key = keys_[op.key];
    if (type == OpType::kAppend || type == OpType::kPrepend) {
      op.value = absl::StrCat(type == OpType::kAppend ? "a" : "p", client_, ".",
                              ++sequence_, ".");
    } else {
      op.value = NewValue();
      op.flags = static_cast<uint32_t>(random_());
    }
    std::string request = absl::StrCat(OpTypeName(type), " ", key, " ",
                                       op.flags, " 0 ", op.value.size());
    if (type == OpType::kCas) {
      const std::optional<uint64_t>& token = last_token_[op.key];
      op.cas = token.has_value() && Percent() >= 10
                   ? *token
                   : (1ull << 63) | (random_() >> 1);
      absl::StrAppend(&request, " ", op.cas);
    }
    absl::StrAppend(&request, "\r\n", op.value, "\r\n");
    return LineRequest(std::move(op), request,
                       [type](const std::string& line, Op*) {
                         if (line == "STORED") return Outcome::kStored;
                         if (line == "NOT_STORED" && type != OpType::kSet &&
                             type != OpType::kCas) {
                           return Outcome::kNotStored;
                         }
                         if (type != OpType::kCas) return Outcome::kUnknown;
                         if (line == "EXISTS") return Outcome::kExists;
                         if (line == "NOT_FOUND") return Outcome::kNotFound;
                         return Outcome::kUnknown;
                       });
  }

  bool Delta(OpType type) {
    Op op = NewOp(type, RandomKey());
    op.delta = std::uniform_int_distribution<uint64_t>(1, 1000)(random_);
    const std::string request = absl::StrCat(
        OpTypeName(type), " ", keys_[op.key], " ", op.delta, "\r\n");
    return LineRequest(std::move(op), request,
                       [](const std::string& line, Op* op) {
                         if (line == "NOT_FOUND") return Outcome::kNotFound;
                         if (line == kNonNumericReply) {
                           return Outcome::kNonNumeric;
                         }
                         if (!line.empty() && absl::ascii_isdigit(line[0]) &&
                             absl::SimpleAtoi(line, &op->number)) {
                           return Outcome::kNumber;
                         }
                         return Outcome::kUnknown;
                       });
  }

  bool Delete() {
    Op op = NewOp(OpType::kDelete, RandomKey());
    const std::string request = absl::StrCat("delete ", keys_[op.key], "\r\n");
    return LineRequest(std::move(op), request,
                       [](const std::string& line, Op*) {
                         if (line == "DELETED") return Outcome::kDeleted;
                         if (line == "NOT_FOUND") return Outcome::kNotFound;
                         return Outcome::kUnknown;
                       });
  }

  // The one request/reply-line round trip of set-like, incr/decr and
  // delete: sends `op`'s `request`, times it, and records `op` with the
  // outcome `classify` reads from the reply line (it may also fill `op`'s
  // number). kUnknown from `classify`: a reply that makes no sense for the
  // request, a failure.
  bool LineRequest(
      Op op, const std::string& request,
      absl::FunctionRef<Outcome(const std::string& line, Op* op)> classify) {
    op.invoke_ns = NowNs();
    absl::Status sent = connection_->Send(request);
    absl::StatusOr<std::string> line =
        sent.ok() ? connection_->ReadLine() : absl::StatusOr<std::string>(sent);
    op.respond_ns = NowNs();
    if (!line.ok()) return Fail({std::move(op)}, line.status());
    op.outcome = classify(*line, &op);
    if (op.outcome == Outcome::kUnknown) {
      const OpType type = op.type;
      return Fail({std::move(op)},
                  absl::InternalError(absl::StrCat("unexpected reply '", *line,
                                                   "' to ", OpTypeName(type))));
    }
    ops_.push_back(std::move(op));
    return true;
  }

  const int client_;
  const WorkloadOptions& options_;
  const std::vector<std::string>& keys_;
  std::unique_ptr<TextConnection> connection_;
  std::mt19937_64 random_;
  std::vector<std::optional<uint64_t>> last_token_;
  std::string pattern_;  // padding source
  uint64_t sequence_ = 0;
  uint64_t requests_ = 0;
  std::vector<Op> ops_;
  std::optional<Failure> failure_;
};

// "0:4 1:5" from `stats workers` ("<worker>:curr_connections <n>").
std::string WorkerConnections(int port, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<TextConnection>> c =
      TextConnection::Connect(port, timeout);
  if (!c.ok()) return std::string(c.status().message());
  auto stats = (*c)->Stats("workers");
  if (!stats.ok()) return std::string(stats.status().message());
  std::vector<std::string> parts;
  for (const auto& [name, value] : *stats) {
    if (absl::EndsWith(name, ":curr_connections")) {
      parts.push_back(absl::StrCat(name.substr(0, name.find(':')), ":", value));
    }
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace

absl::StatusOr<WorkloadResult> RunWorkload(int port,
                                           const WorkloadOptions& options) {
  if (options.connections < 1 || options.connections > 63) {
    return absl::InvalidArgumentError("connections must be in 1..63");
  }
  if (options.keys < 1) return absl::InvalidArgumentError("keys must be >= 1");
  WorkloadResult result;
  const std::string prefix = options.key_prefix.empty()
                                 ? absl::StrCat("cons", options.seed, ":")
                                 : options.key_prefix;
  for (int k = 0; k < options.keys; ++k) {
    result.history.keys.push_back(absl::StrCat(prefix, "k", k));
  }
  const std::vector<std::string>& keys = result.history.keys;

  std::vector<std::unique_ptr<ClientRun>> clients;
  for (int c = 0; c <= options.connections; ++c) {
    absl::StatusOr<std::unique_ptr<TextConnection>> connection =
        TextConnection::Connect(port, options.timeout);
    if (!connection.ok()) return connection.status();
    // A round trip: the server has accepted it before the stats below.
    absl::StatusOr<std::string> version = (*connection)->Command("version");
    if (!version.ok()) return version.status();
    clients.push_back(
        std::make_unique<ClientRun>(c, options, keys, *std::move(connection)));
  }
  if (options.query_worker_connections) {
    result.worker_connections = WorkerConnections(port, options.timeout);
  }

  std::atomic<uint64_t> next{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < options.connections; ++c) {
    threads.emplace_back(
        [&next, client = clients[c].get()] { client->Run(&next); });
  }
  for (std::thread& t : threads) t.join();
  result.elapsed = absl::Now() - start;
  // The last connection reads every key once the others are done.
  clients.back()->ReadAll();

  size_t total = 0;
  for (const auto& client : clients) total += client->ops().size();
  result.history.ops.reserve(total);
  for (const auto& client : clients) {
    result.requests += client->requests();
    if (client->failure().has_value()) {
      ++result.errors;
      if (result.error_samples.size() < kMaxErrorSamples) {
        result.error_samples.push_back(
            std::string(client->failure()->status.message()));
      }
    }
    for (Op& op : client->ops()) result.history.ops.push_back(std::move(op));
  }
  return result;
}

}  // namespace memshard::consistency
