#pragma once

// The memcached meta protocol parser (mg, ms, md, ma, mn, me). Pure: bytes
// in, a MetaRequest and a status out; no sockets, no globals.
// Thread-compatible: call from one thread at a time per MetaRequest.
//
// Meta commands share a connection with the classic text commands: a line
// whose first token is two bytes starting with 'm' is meta (IsMetaLine), any
// other line goes to ParseText. Framing is the text protocol's (text_parser.h):
// a line ends in "\n" with an optional "\r" before it, tokens are separated by
// spaces, ms's data block is <datalen> bytes plus "\r\n". The answer never
// depends on how the input was split into reads (testing/byte_split.h).
//
// Checks, their order and their error texts follow memcached 1.6's
// proto_text.c (process_m*_command, _meta_flag_preparse), so the same bad
// line earns the same reply. Unlike classic noreply, meta's q flag never
// hides an error: errors are always answered.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "server/protocol/text_parser.h"

namespace memshard {

enum class MetaCommand : uint8_t {
  kNone,
  kGet,         // mg
  kSet,         // ms
  kDelete,      // md
  kArithmetic,  // ma
  kNoop,        // mn
  kDebug,       // me
};

// ms M<mode>: S set (default), E add, A append, P prepend, R replace.
enum class MetaSetMode : uint8_t { kSet, kAdd, kAppend, kPrepend, kReplace };

// memcached refuses a command line of more than 20 tokens counting the
// command, the key and its own end marker: at most 17 flags.
inline constexpr size_t kMaxMetaFlags = 17;
// Longest O(opaque) token, counting the 'O'.
inline constexpr size_t kMaxMetaOpaqueLength = 32;

// One flag token as sent: its letter and the bytes after it ("O123" is
// {'O', "123"}).
struct MetaFlag {
  char flag = 0;
  absl::string_view token;
};

// A parsed meta request. Lifetime: `key` (unless decoded from base64),
// `value` and every flag token point into the parser's input, like Request.
// A decoded base64 key lives in `key_buffer`, so a MetaRequest is not
// copyable (its views would dangle); reuse one per worker.
struct MetaRequest {
  MetaRequest() = default;
  MetaRequest(const MetaRequest&) = delete;
  MetaRequest& operator=(const MetaRequest&) = delete;

  MetaCommand command = MetaCommand::kNone;
  // The key the store sees: base64-decoded when `base64_key`.
  absl::string_view key;
  // b: the key was sent in base64 (and is returned in base64).
  bool base64_key = false;
  // ms: the data block without its "\r\n".
  absl::string_view value;

  // Every flag in request order: return flags are answered in this order.
  std::array<MetaFlag, kMaxMetaFlags> flags;
  size_t flag_count = 0;

  bool quiet = false;         // q: hide the nominal reply (HD, EN, ...)
  bool no_bump = false;       // u: mg does not bump or mark fetched
  bool return_value = false;  // v
  bool invalidate = false;    // I: md marks stale; ms with C may store stale
  bool has_cas = false;       // C<cas>
  uint64_t cas = 0;
  bool has_ttl = false;  // T<ttl>: raw exptime, like Request::exptime
  int64_t ttl = 0;
  bool vivify = false;  // N<ttl>: mg/ma create on miss with this exptime
  int64_t vivify_ttl = 0;
  bool has_recache = false;  // R<ttl>: mg wins a recache below this TTL
  int64_t recache_ttl = 0;
  uint32_t client_flags = 0;                 // F<flags> (ms)
  MetaSetMode set_mode = MetaSetMode::kSet;  // M (ms)
  bool decrement = false;                    // M (ma): D or -
  uint64_t delta = 1;                        // D<delta> (ma)
  uint64_t initial = 0;                      // J<initial> (ma)

  // Holds a base64-decoded key.
  std::string key_buffer;

  // Whether `flag` was sent (any token starting with that letter).
  bool Has(char flag) const {
    for (size_t i = 0; i < flag_count; ++i) {
      if (flags[i].flag == flag) return true;
    }
    return false;
  }

  void Clear();
};

// True when `input` holds a complete line whose first token is two bytes
// starting with 'm' (memcached's test for a meta command). False for an
// incomplete line: ParseText then decides between waiting and closing.
bool IsMetaLine(absl::string_view input);

// Parses one meta request from the front of `input`, which IsMetaLine()
// accepted. Same contract as ParseText: always sets `*consumed` (0 for
// kIncomplete and kClose), clears `*request` first, and on kOk the request's
// views point into `input` (or into request->key_buffer). An ms rejected
// before its data block arrives sets `swallow` on kClientError as well as on
// kServerError: the block is discarded as it arrives. `request->quiet` never
// silences an error.
ParseResult ParseMeta(absl::string_view input, const TextParserOptions& options,
                      size_t* consumed, MetaRequest* request);

// memcached's base64 decoder (base64.c, after hostap): bytes outside the
// alphabet are skipped, the rest must come in fours, and decoding stops after
// the first block holding '=' padding. Returns false where memcached's
// decoder returns 0 (nothing decoded, or bad padding).
bool DecodeMetaBase64(absl::string_view in, std::string* out);

}  // namespace memshard
