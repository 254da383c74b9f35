#pragma once

// A minimal blocking memcached text-protocol connection for tools (the
// consistency workload, the soak): no gtest, every failure is a Status.
//
// Thread-compatible: one thread uses one connection at a time. Every wait is
// bounded by the timeout given to Connect (poll(2) deadlines). Send() reads
// whatever the server replies while it writes, so a long pipelined batch
// cannot deadlock against a server that stops reading until its replies are
// consumed.
//
// Invariant: buffer_[start_, end) holds bytes received and not yet returned.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard::consistency {

// One "VALUE <key> <flags> <bytes> [<cas>]" block of a get/gets reply.
struct TextValue {
  std::string key;
  uint32_t flags = 0;
  std::string data;
  bool has_cas = false;
  uint64_t cas = 0;
};

class TextConnection {
 public:
  // Connects to 127.0.0.1:`port` (TCP_NODELAY).
  static absl::StatusOr<std::unique_ptr<TextConnection>> Connect(
      int port, absl::Duration timeout = absl::Seconds(30));

  TextConnection(const TextConnection&) = delete;
  TextConnection& operator=(const TextConnection&) = delete;
  ~TextConnection();

  // Writes all of `bytes`.
  absl::Status Send(absl::string_view bytes);
  // One "\r\n"-terminated line, without the terminator.
  absl::StatusOr<std::string> ReadLine();
  // Exactly `n` bytes.
  absl::StatusOr<std::string> ReadExactly(size_t n);
  // The VALUE blocks of one get/gets reply, up to and including "END".
  absl::StatusOr<std::vector<TextValue>> ReadValues();
  // Sends `line` + "\r\n" and returns the reply line.
  absl::StatusOr<std::string> Command(absl::string_view line);
  // "stats [group]": name -> value of the STAT lines, in order.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Stats(
      absl::string_view group = "");

 private:
  TextConnection(int fd, absl::Duration timeout) : fd_(fd), timeout_(timeout) {}

  // Waits until readable (or, with `want_write`, writable) before
  // `deadline`; reads what is readable into the buffer. Sets *writable.
  absl::Status Poll(absl::Time deadline, bool want_write, bool* writable);
  size_t buffered() const { return buffer_.size() - start_; }
  void Consume(size_t n);

  int fd_;
  absl::Duration timeout_;
  std::string buffer_;
  size_t start_ = 0;
};

}  // namespace memshard::consistency
