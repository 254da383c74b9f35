#pragma once

// The memcached binary protocol parser (doc/protocol-binary.txt). Pure: bytes
// in, a BinaryRequest and a status out; no sockets, no globals.
// Thread-compatible: call from one thread at a time per BinaryRequest.
//
// A request is a 24-byte header followed by <body length> bytes: extras,
// then key, then value. The parser answers kOk only once the whole packet is
// buffered, and judges every framing question from the header alone, so the
// answer never depends on how the input was split into reads and it never
// reads past what it was given. All length arithmetic is done in 64 bits
// from the header's 8-, 16- and 32-bit fields, so it cannot overflow; the
// checks follow memcached 1.6's proto_bin.c (dispatch_bin_command) and close
// the holes of CVE-2011-4971 (huge body length) and CVE-2016-8704/8705/8706
// (key + extras longer than the body, making the value length negative).

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace memshard {

inline constexpr uint8_t kBinaryRequestMagic = 0x80;
inline constexpr uint8_t kBinaryResponseMagic = 0x81;
inline constexpr size_t kBinaryHeaderSize = 24;

// The single list of binary opcodes: X(enum name, code).
#define MEMSHARD_BINARY_OPCODES(X) \
  X(kGet, 0x00)                    \
  X(kSet, 0x01)                    \
  X(kAdd, 0x02)                    \
  X(kReplace, 0x03)                \
  X(kDelete, 0x04)                 \
  X(kIncrement, 0x05)              \
  X(kDecrement, 0x06)              \
  X(kQuit, 0x07)                   \
  X(kFlush, 0x08)                  \
  X(kGetQ, 0x09)                   \
  X(kNoop, 0x0a)                   \
  X(kVersion, 0x0b)                \
  X(kGetK, 0x0c)                   \
  X(kGetKQ, 0x0d)                  \
  X(kAppend, 0x0e)                 \
  X(kPrepend, 0x0f)                \
  X(kStat, 0x10)                   \
  X(kSetQ, 0x11)                   \
  X(kAddQ, 0x12)                   \
  X(kReplaceQ, 0x13)               \
  X(kDeleteQ, 0x14)                \
  X(kIncrementQ, 0x15)             \
  X(kDecrementQ, 0x16)             \
  X(kQuitQ, 0x17)                  \
  X(kFlushQ, 0x18)                 \
  X(kAppendQ, 0x19)                \
  X(kPrependQ, 0x1a)               \
  X(kVerbosity, 0x1b)              \
  X(kTouch, 0x1c)                  \
  X(kGat, 0x1d)                    \
  X(kGatQ, 0x1e)                   \
  X(kSaslListMechs, 0x20)          \
  X(kSaslAuth, 0x21)               \
  X(kSaslStep, 0x22)               \
  X(kGatK, 0x23)                   \
  X(kGatKQ, 0x24)

enum class BinaryOpcode : uint8_t {
#define MEMSHARD_BINARY_OPCODE_ENUM(name, code) name = code,
  MEMSHARD_BINARY_OPCODES(MEMSHARD_BINARY_OPCODE_ENUM)
#undef MEMSHARD_BINARY_OPCODE_ENUM
};

// Response status codes.
enum class BinaryStatus : uint16_t {
  kNoError = 0x0000,
  kKeyNotFound = 0x0001,
  kKeyExists = 0x0002,
  kValueTooLarge = 0x0003,
  kInvalidArguments = 0x0004,
  kNotStored = 0x0005,
  kNonNumeric = 0x0006,
  kAuthError = 0x0020,
  kAuthContinue = 0x0021,
  kUnknownCommand = 0x0081,
  kOutOfMemory = 0x0082,
};

// The text memcached sends as the body of an error response.
absl::string_view BinaryStatusText(BinaryStatus status);

// "GetQ" and friends: whether `opcode` is a known opcode, and its name.
bool IsKnownBinaryOpcode(uint8_t opcode);
absl::string_view BinaryOpcodeName(uint8_t opcode);

// A parsed request. Lifetime: every view points into the parser's input,
// like Request. `op` is the opcode with quiet forms folded into their loud
// form (GetQ -> Get, GatKQ -> GatK, ...); `quiet` says it was a quiet form;
// `opcode` is what was sent, and is echoed in the response.
struct BinaryRequest {
  uint8_t opcode = 0;
  BinaryOpcode op = BinaryOpcode::kGet;
  bool quiet = false;
  uint32_t opaque = 0;  // echoed as sent (byte order is the client's)
  uint64_t cas = 0;
  absl::string_view extras;
  absl::string_view key;
  absl::string_view value;

  // Decoded extras (host order).
  uint32_t flags = 0;           // set/add/replace
  uint32_t expiration = 0;      // set/add/replace/incr/decr/touch/gat/flush
  bool has_expiration = false;  // flush: extras were sent
  uint64_t delta = 0;           // incr/decr
  uint64_t initial = 0;         // incr/decr
  uint32_t verbosity = 0;       // verbosity

  void Clear() { *this = BinaryRequest(); }
};

struct BinaryParserOptions {
  // Largest value a storage command may carry (--max_item_size).
  uint64_t max_value_size = 1024 * 1024;
};

enum class BinaryParseStatus : uint8_t {
  // `*consumed` bytes form `*request`, ready to execute.
  kOk,
  // Not enough bytes yet; nothing consumed. `need` is the total the packet
  // is known to need (the header's size while the header is incomplete).
  // Once the header has passed its checks, `prefix` is set too and so are
  // the request's opcode, op, quiet and opaque, so a connection can refuse
  // the request (e.g. before authentication) without waiting for a value.
  kIncomplete,
  // Answer with an error response of `error` (opcode and opaque from
  // `*request`), drop `*consumed` bytes, then discard `swallow` more as they
  // arrive; close the connection after writing if `close`.
  kError,
  // Close at once without a reply (bad magic: framing is lost).
  kClose,
};

struct BinaryParseResult {
  BinaryParseStatus status = BinaryParseStatus::kIncomplete;
  BinaryStatus error = BinaryStatus::kNoError;
  bool close = false;
  uint64_t swallow = 0;
  uint64_t need = 0;
  // kIncomplete with a checked header: header, extras and key, the bytes
  // memcached reads before it dispatches (proto_bin.c); 0 otherwise.
  uint64_t prefix = 0;
};

// A response header (the body follows it: extras, key, value).
struct BinaryResponseHeader {
  uint8_t opcode = 0;
  BinaryStatus status = BinaryStatus::kNoError;
  uint8_t extras_length = 0;
  uint16_t key_length = 0;
  uint32_t body_length = 0;  // extras + key + value
  uint32_t opaque = 0;
  uint64_t cas = 0;
};

// Writes `header` in wire order (magic 0x81, big-endian fields).
void EncodeBinaryResponseHeader(const BinaryResponseHeader& header,
                                char out[kBinaryHeaderSize]);

// Parses one request from the front of `input`. Always sets `*consumed` (0
// for kIncomplete and kClose) and clears `*request` first. On kError the
// request's opcode, opaque and (when the key was buffered) nothing else are
// set. On kOk every view points into `input`.
//
// Framing errors, decided from the header alone:
//  - magic other than 0x80: kClose;
//  - key + extras longer than the body: "Unknown command", close (memcached);
//  - a body longer than any valid request may be (a value of max_value_size
//    plus the longest key and extras): "Too large.", close;
//  - a key longer than 250 bytes, or lengths that do not fit the opcode:
//    "Invalid arguments", close (memcached's handle_binary_protocol_error);
//  - an unknown opcode: "Unknown command", the body swallowed, go on;
//  - a storage value above max_value_size: "Too large.", swallowed, go on.
BinaryParseResult ParseBinary(absl::string_view input,
                              const BinaryParserOptions& options,
                              size_t* consumed, BinaryRequest* request);

// The binary gets: get, getq, getk, getkq.
inline bool IsBinaryGet(BinaryOpcode op) {
  return op == BinaryOpcode::kGet || op == BinaryOpcode::kGetQ ||
         op == BinaryOpcode::kGetK || op == BinaryOpcode::kGetKQ;
}

// ScanRetrievalKeys (text_parser.h) for the binary protocol, the
// connection's look-ahead over pipelined requests: collects into `keys`
// (count in `*key_count`) the keys of the gets among at most `max_requests`
// complete packets at the front of `input`, and returns the bytes of the
// packets scanned. It stops at the first incomplete packet or bad magic. A
// hint, not a parse: nothing else is checked (ParseBinary judges each packet
// when it executes). `keys` must have room for `max_requests`.
size_t ScanBinaryRetrievalKeys(absl::string_view input, size_t max_requests,
                               absl::string_view* keys, size_t* key_count);

}  // namespace memshard
