#pragma once

// The load generator's wire seam: how requests are encoded and replies
// parsed. The connection engine speaks only through Protocol, so meta and
// binary encodings can be added later without touching it.
//
// Thread-safety: a Protocol is immutable after construction and may be
// shared by all client threads.
//
// Parsing is pure (bytes in, one reply out) and restartable: on kIncomplete
// nothing is consumed, and the caller calls again from the same start once
// more bytes have arrived. Lifetime: string_views in a Reply point into the
// input passed to ParseReply and are valid only as long as that input.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace memshard {
namespace loadgen {

enum class ReplyKind : uint8_t {
  kValues,       // a retrieval reply: zero or more values, then the end
  kStored,       // the request was stored
  kNotStored,    // NOT_STORED, EXISTS, NOT_FOUND
  kError,        // ERROR (unknown command)
  kClientError,  // CLIENT_ERROR <message>
  kServerError,  // SERVER_ERROR <message> (e.g. out of memory)
  kOther,        // any other single line (DELETED, VERSION ..., ...)
};

struct ReplyValue {
  absl::string_view key;
  absl::string_view data;
  uint32_t flags = 0;
};

struct Reply {
  ReplyKind kind = ReplyKind::kOther;
  // kValues only, in the order the server sent them.
  absl::InlinedVector<ReplyValue, 16> values;
  // The status line without its terminator (for errors and kOther).
  absl::string_view line;

  void Clear() {
    kind = ReplyKind::kOther;
    values.clear();
    line = absl::string_view();
  }
};

enum class ParseStatus : uint8_t {
  kOk,          // one reply parsed; *consumed bytes belong to it
  kIncomplete,  // need more bytes; nothing consumed
  kInvalid,     // the stream cannot be framed any more
};

class Protocol {
 public:
  virtual ~Protocol() = default;

  virtual absl::string_view name() const = 0;
  // Appends one retrieval request for `keys` (one key or a multiget).
  virtual void AppendGet(absl::Span<const absl::string_view> keys,
                         std::string* out) const = 0;
  // Appends one storage request (flags 0, no expiry).
  virtual void AppendSet(absl::string_view key, absl::string_view value,
                         std::string* out) const = 0;
  // Parses the first complete reply at the start of `input`.
  virtual ParseStatus ParseReply(absl::string_view input, size_t* consumed,
                                 Reply* reply) const = 0;
};

// The memcached text protocol: "get k1 k2 ...", "set k 0 0 n".
class TextProtocol : public Protocol {
 public:
  absl::string_view name() const override { return "text"; }
  void AppendGet(absl::Span<const absl::string_view> keys,
                 std::string* out) const override;
  void AppendSet(absl::string_view key, absl::string_view value,
                 std::string* out) const override;
  ParseStatus ParseReply(absl::string_view input, size_t* consumed,
                         Reply* reply) const override;
};

// "text" (meta and binary later). InvalidArgument for other names.
absl::StatusOr<std::unique_ptr<Protocol>> MakeProtocol(absl::string_view name);

}  // namespace loadgen
}  // namespace memshard
