#pragma once

// Dropping root after binding (--user): a root-started server binds its
// sockets (a low port, a unix socket in /run), then becomes an unprivileged
// user for good before any worker runs.
//
// Thread-safety: call DropPrivileges() while the process has one thread
// (setuid(2) semantics across threads are glibc's business, and nothing
// should run as root meanwhile). LookUpUser() is thread-safe.

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace memshard {

struct UnixUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // the user's primary group
};

// `user` is a login name or a numeric uid. Fails with a one-line reason if
// there is no such user, or if the process could not become it (not root,
// and not already that user).
absl::StatusOr<UnixUser> LookUpUser(const std::string& user);

// Sets supplementary groups, gid and uid (real, effective and saved) to
// `user`'s, and checks that root cannot be regained. A no-op if the process
// already runs as `user`.
absl::Status DropPrivileges(const UnixUser& user);

}  // namespace memshard
