#pragma once

// A recorded history of single-key memcached operations: what each client
// asked, what the server answered, and when (invocation and response on one
// monotonic clock shared by all clients). The consistency workload produces
// it; the checker (checker.h) judges it; unit tests build it by hand.
//
// Thread-compatible value types. Invariants: ops of one client do not overlap
// in time on one key (invoke_ns >= the previous op's respond_ns); an op with
// respond_ns == kNoResponse never got a reply and its outcome is kUnknown.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace memshard::consistency {

enum class OpType : uint8_t {
  kGet,   // get: value and flags
  kGets,  // gets: value, flags and CAS token
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

enum class Outcome : uint8_t {
  kHit,         // get/gets found the key: value, flags (and cas for gets)
  kMiss,        // get/gets did not
  kStored,      // STORED
  kNotStored,   // NOT_STORED
  kExists,      // EXISTS (cas)
  kNotFound,    // NOT_FOUND (cas, incr, decr, delete)
  kDeleted,     // DELETED
  kNumber,      // incr/decr's new value, in `number`
  kNonNumeric,  // CLIENT_ERROR cannot increment or decrement non-numeric value
  // No reply, or a reply outside the above: the op may or may not have taken
  // effect (the checker allows both).
  kUnknown,
};

struct Op {
  static constexpr int64_t kNoResponse = std::numeric_limits<int64_t>::max();

  int client = 0;
  uint32_t key = 0;  // index into History::keys
  OpType type = OpType::kGet;
  int64_t invoke_ns = 0;
  int64_t respond_ns = kNoResponse;
  // Writes: the value and flags sent. Reads that hit: the value and flags
  // returned.
  std::string value;
  uint32_t flags = 0;
  // cas: the token sent. gets that hit: the token returned.
  uint64_t cas = 0;
  // incr/decr: the delta sent.
  uint64_t delta = 0;
  Outcome outcome = Outcome::kUnknown;
  // incr/decr with kNumber: the value returned.
  uint64_t number = 0;
};

struct History {
  std::vector<std::string> keys;
  std::vector<Op> ops;
};

const char* OpTypeName(OpType type);
const char* OutcomeName(Outcome outcome);

// One line for reports: "client 3 gets key 2 [12.345678, 12.401234] ms ->
// hit 's3.17:xx' flags 5 cas 1234". Times are relative to `origin_ns`.
std::string DescribeOp(const Op& op, int64_t origin_ns);

// A text file of the history, for re-checking offline and for bug reports:
// a "keys" line, then one line per op with every field (values C-escaped).
absl::Status WriteHistory(const History& history, const std::string& path);
absl::StatusOr<History> ReadHistory(const std::string& path);

// `value` quoted and shortened to `max` bytes, non-printables escaped.
std::string QuoteValue(const std::string& value, size_t max = 48);

}  // namespace memshard::consistency
