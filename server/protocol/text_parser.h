#pragma once

// The memcached classic text protocol parser. Pure: bytes in, a Request and a
// status out; no sockets, no globals, no allocation beyond `request->keys`.
// Thread-compatible: call from one thread at a time per Request.
//
// Framing follows memcached 1.6 (proto_text.c): a command line ends in "\n"
// with an optional "\r" before it; tokens are separated by spaces; a storage
// command's data block is exactly <bytes> bytes followed by "\r\n". The
// parser's answer never depends on how the input was split into reads: for
// any prefix of a request it returns kIncomplete or the same answer as for
// the whole request (testing/byte_split.h checks this).

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/protocol/request.h"

namespace memshard {

// Longest command line (bytes before its "\n") accepted; longer lines close
// the connection, as memcached does when 2048 bytes arrive without a newline.
inline constexpr size_t kMaxTextLineLength = 2048;
// Except that a line starting (after at most 100 spaces) with "get ", "gets ",
// "gat " or "gats " may grow to this bound: a multiget of many keys.
inline constexpr size_t kMaxRetrievalLineLength = 1024 * 1024;
inline constexpr size_t kMaxKeyLength = 250;

// On the error statuses `request->command` is set when the command was
// recognised, and `request->noreply` is true when the line ended in
// "noreply": memcached then sends no error reply either (its out_string()
// honours noreply), so the connection should stay silent but still drop
// `consumed` and `swallow` bytes.
enum class ParseStatus : uint8_t {
  // `*consumed` bytes form `*request`, ready to execute.
  kOk,
  // Not enough bytes yet; nothing consumed. `need`, when non-zero, is the
  // total number of input bytes the request is known to need.
  kIncomplete,
  // Reply "ERROR\r\n" and drop `*consumed` bytes (unknown command).
  kError,
  // Reply "CLIENT_ERROR <message>\r\n" and drop `*consumed` bytes.
  kClientError,
  // Reply "SERVER_ERROR <message>\r\n", drop `*consumed` bytes, then discard
  // `swallow` further bytes as they arrive (an oversized data block).
  kServerError,
  // Reply "<message>\r\n" if message is not empty, then close the connection
  // (framing is lost). An over-long line closes silently, like memcached.
  kClose,
};

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  // Static text for the error statuses (no "CLIENT_ERROR " prefix, no CRLF).
  absl::string_view message;
  uint64_t swallow = 0;
  size_t need = 0;
};

struct TextParserOptions {
  // Largest data block a storage command may carry (--max_item_size).
  uint64_t max_value_size = 1024 * 1024;
};

// Parses one request from the front of `input`. Always sets `*consumed` (0
// for kIncomplete and kClose) and clears `*request` first. On kOk the
// request's string_views point into `input`.
ParseResult ParseText(absl::string_view input, const TextParserOptions& options,
                      size_t* consumed, Request* request);

// Look-ahead for pipelined retrievals, so a connection can prefetch their
// keys' buckets before it executes them: collects into `keys` (at most
// `max_keys`, count in `*key_count`) the keys of the retrievals (get, gets,
// gat, gats, mg) among at most `max_lines` complete lines at the front of
// `input`, and returns the bytes of the lines scanned. A hint, not a parse:
// keys are not validated (an mg key in base64 is returned as sent), lines
// it does not recognise are skipped, and it stops before a storage command
// (set, add, replace, append, prepend, cas, ms), whose data block is not a
// line, and at the first incomplete line.
size_t ScanRetrievalKeys(absl::string_view input, size_t max_lines,
                         absl::string_view* keys, size_t max_keys,
                         size_t* key_count);

}  // namespace memshard
