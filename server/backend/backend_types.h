#pragma once

// The vocabulary between orchestrators and backends: one request to one
// backend server and its one reply.
//
// Lifetime: every string_view in a BackendRequest must stay valid only for
// the duration of the call that takes it (the request is encoded into the
// connection's output at once). Every string_view in a BackendReply points
// into the backend connection's input buffer and is valid only during the
// ReplySink callback that receives it; copy what you keep.

#include <cstdint>

#include "absl/strings/string_view.h"

namespace memshard {
namespace backend {

// What to ask a backend. Each op carries at most one key: a client multiget
// becomes one op per key, pipelined (see BackendPool).
enum class BackendOp : uint8_t {
  kGet,
  kGets,
  kGat,
  kGats,
  kTouch,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kDelete,
  kIncr,
  kDecr,
  kVersion,
  kFlushAll,
  // A client's meta command (mg, ms, md, ma, me), relayed as is: `value`
  // holds its bytes, framed (line, and for ms the data block), without the
  // q flag (one request, one reply). The reply comes back raw (kRaw).
  kMetaRaw,
};

// "get", "set", ...: for logs and tests.
absl::string_view BackendOpName(BackendOp op);

// Keyless ops are broadcast or probes, not routed by key.
inline bool HasKey(BackendOp op) {
  return op != BackendOp::kVersion && op != BackendOp::kFlushAll;
}

struct BackendRequest {
  BackendOp op = BackendOp::kGet;
  absl::string_view key;
  absl::string_view value;  // storage ops, without the trailing "\r\n"
  uint32_t flags = 0;
  // As the client sent it (relative up to 30 days, else absolute); passed
  // through, so the backend applies memcached's own rules.
  int64_t exptime = 0;  // storage ops, touch, gat, gats
  uint64_t cas = 0;     // kCas
  uint64_t delta = 0;   // kIncr, kDecr
  int64_t delay = -1;   // kFlushAll: < 0 sends no delay argument
};

enum class BackendStatus : uint8_t {
  // Answers from the backend.
  kHit,        // retrieval: value, flags, cas (gets/gats), ttl (meta)
  kMiss,       // retrieval: no such key
  kStored,     // storage ops
  kNotStored,  // add of a present key, replace/append/prepend of a missing one
  kExists,     // cas: the item changed
  kNotFound,   // cas, delete, touch, incr/decr of a missing key
  kDeleted,
  kTouched,
  kNumber,       // incr/decr: `value` holds the new value's digits
  kVersion,      // `value` holds the version string
  kOk,           // flush_all
  kRaw,          // kMetaRaw: `value` holds the whole reply, framing included
  kError,        // "ERROR"
  kClientError,  // `value` holds the message
  kServerError,  // `value` holds the message
  // Made up locally, never sent by a backend.
  kUnavailable,  // no live backend for the key, or its connection is down
  kTimeout,      // no answer within the backend timeout
  kBusy,         // the connection's in-flight limit was reached
};

absl::string_view BackendStatusName(BackendStatus status);

// True for the statuses a backend never sends (kUnavailable, kTimeout,
// kBusy): the request may or may not have been applied.
inline bool IsLocalFailure(BackendStatus status) {
  return status >= BackendStatus::kUnavailable;
}

// Remaining TTL not known (text protocol backends do not say).
inline constexpr int64_t kTtlUnknown = -2;
// The item never expires.
inline constexpr int64_t kTtlNever = -1;

struct BackendReply {
  BackendStatus status = BackendStatus::kMiss;
  // Hit: the value's bytes. kNumber, kVersion, k*Error: the text.
  absl::string_view value;
  uint32_t flags = 0;
  // A hit's CAS (gets, gats; any retrieval over meta).
  uint64_t cas = 0;
  // Hit over meta: seconds left (kTtlNever if none); text: kTtlUnknown.
  int64_t ttl = kTtlUnknown;
  // Also the new item's CAS after a storage op over meta (0 over text).
};

// Receives the replies to requests it submitted, each exactly once, in the
// order the backend connection answers them (which, for one connection, is
// the order they were sent). Implemented by orchestrators; called on the
// worker's thread from the event loop (never from inside Send()).
class ReplySink {
 public:
  virtual void OnBackendReply(uint64_t tag, const BackendReply& reply) = 0;

 protected:
  ~ReplySink() = default;
};

}  // namespace backend
}  // namespace memshard
