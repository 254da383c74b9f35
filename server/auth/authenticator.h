#pragma once

// Authenticator: the user:password list behind --auth_file (ascii, memcached
// -Y compatible) and --sasl_password_file (binary SASL PLAIN).
//
// Thread-safety: every method may be called from any thread. Check() takes
// a reader lock, Reload() a writer lock; authentication happens once per
// connection, so the lock is off the request path. The lock is a
// std::shared_mutex, not absl::Mutex: Debian's absl is not built for
// ThreadSanitizer, which then cannot see the ordering absl::Mutex provides
// and reports races that are not there.
//
// File format (memcached's authfile.c and its SASL password file): one
// "user:password" per line; the password is everything after the first ':'
// up to the line end ("\r\n" or "\n"); empty lines are skipped. A line
// without ':' makes the whole file invalid, so a typo cannot silently lock
// everybody out or let somebody in.

#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memshard {

class Authenticator {
 public:
  // Reads `path`; fails if it cannot be read, is invalid or holds no user.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(
      std::string path);
  // From file contents (tests).
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromText(
      absl::string_view text);

  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // True if `user` is listed with exactly `password`. Every entry is
  // compared, and each comparison takes time independent of where the bytes
  // differ, so the answer's timing tells nothing about the password.
  bool Check(absl::string_view user, absl::string_view password) const;

  // Re-reads the file given to FromFile (SIGHUP). On failure the old list
  // stays in force.
  absl::Status Reload();

  const std::string& path() const { return path_; }

 private:
  using Entries = std::vector<std::pair<std::string, std::string>>;
  explicit Authenticator(std::string path) : path_(std::move(path)) {}
  static absl::StatusOr<Entries> Parse(absl::string_view text);

  const std::string path_;
  mutable std::shared_mutex mu_;
  Entries entries_ ABSL_GUARDED_BY(mu_);
};

// Compares in time that depends only on the lengths, not the contents.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// SASL PLAIN (RFC 4616): "[authzid] NUL authcid NUL passwd". False if the
// message does not have exactly two NULs or the user is empty.
bool ParseSaslPlain(absl::string_view message, absl::string_view* user,
                    absl::string_view* password);

}  // namespace memshard
