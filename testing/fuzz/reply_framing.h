#pragma once

// Framing checks for what a memshard connection sent back: the whole reply
// stream of one connection, read until the server closed it. They judge
// shape, not content: every reply is complete and of a known kind, so a
// client could walk the stream without losing its place. Pure functions;
// any thread.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace memshard::fuzz {

// Text and meta replies: every line ends in "\r\n" and starts with a reply
// keyword (VALUE, END, STORED, ..., HD, VA, EN, ...) or is the number an
// incr/decr returns; VALUE and VA lines are followed by exactly the byte
// count they announce and "\r\n"; nothing is left over.
absl::Status CheckAsciiReplies(absl::string_view replies);

// Binary responses: each is a 24-byte header with magic 0x81, data type 0,
// a known status and extras + key within the body, followed by exactly
// <body length> bytes; nothing is left over.
absl::Status CheckBinaryReplies(absl::string_view replies);

}  // namespace memshard::fuzz
