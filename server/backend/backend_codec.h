#pragma once

// Encoding requests for, and parsing replies from, memcached backends, in the
// text or the meta protocol. Pure functions: bytes in, bytes out, no sockets.
//
// Meta (memcached >= 1.6, memshard) is the default because `mg ... t` returns
// the remaining TTL, which an L1 fill needs; text is for older servers. Every
// request is sent without noreply/quiet flags: one request, one reply, so
// replies are matched to requests by order alone.

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "server/backend/backend_types.h"

namespace memshard {
namespace backend {

enum class BackendProtocol : uint8_t { kMeta, kText };

// Calls `append` with the request's bytes, in order (a header line, and for
// storage ops the value and its "\r\n", so big values are not copied twice).
void EncodeRequest(BackendProtocol protocol, const BackendRequest& request,
                   absl::FunctionRef<void(absl::string_view)> append);

enum class ReplyParse : uint8_t {
  kOk,          // `*reply` and `*consumed` are set
  kIncomplete,  // need more bytes; `*need` is a lower bound on the total
  kInvalid,     // not a reply to `op`: the stream is out of sync
};

// Parses the reply to `op` at the front of `in`. Views in `*reply` point
// into `in`.
ReplyParse ParseReply(BackendProtocol protocol, BackendOp op,
                      absl::string_view in, size_t* consumed, size_t* need,
                      BackendReply* reply);

}  // namespace backend
}  // namespace memshard
