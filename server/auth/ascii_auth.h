#pragma once

// The ascii authentication handshake of memcached's -Y (--auth_file): until
// it authenticates, an ascii connection may only send
//   set <any key> <flags> <exptime> <bytes>\r\n<user> <password>\r\n
// (key, flags and exptime are ignored). Pure: bytes in, a reply out; the
// replies and checks follow memcached 1.6's try_read_command_asciiauth.
// Thread-compatible; the Authenticator is thread-safe.

#include <cstddef>

#include "absl/strings/string_view.h"
#include "server/auth/authenticator.h"

namespace memshard {

// The longest <user> <password> payload accepted. memcached would wait for
// any <bytes>; an unauthenticated peer must not make us buffer much, so a
// larger one closes the connection.
inline constexpr size_t kMaxAsciiAuthPayload = 4096;

enum class AsciiAuthStatus {
  kIncomplete,  // wait for more bytes; nothing consumed
  kReply,       // send `reply` + "\r\n", drop `*consumed` bytes
  kClose,       // close the connection without a reply
};

struct AsciiAuthResult {
  AsciiAuthStatus status = AsciiAuthStatus::kIncomplete;
  absl::string_view reply;     // static text, no CRLF
  bool authenticated = false;  // kReply: the credentials were good
  size_t need = 0;             // kIncomplete: total bytes needed, if known
};

// One step of the handshake over the buffered `input`.
AsciiAuthResult AsciiAuthStep(absl::string_view input,
                              const Authenticator& authenticator,
                              size_t* consumed);

}  // namespace memshard
