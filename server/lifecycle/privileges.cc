#include "server/lifecycle/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace memshard {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<UnixUser> LookUpUser(const std::string& user) {
  if (user.empty()) return absl::InvalidArgumentError("--user is empty");
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? size : 16384);
  passwd entry{};
  passwd* found = nullptr;
  uid_t numeric = 0;
  int rc =
      absl::SimpleAtoi(user, &numeric)
          ? getpwuid_r(numeric, &entry, buffer.data(), buffer.size(), &found)
          : getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(),
                       &found);
  if (found == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("--user=", user, ": no such user",
                     rc != 0 ? absl::StrCat(" (", strerror(rc), ")") : ""));
  }
  UnixUser result{entry.pw_name, entry.pw_uid, entry.pw_gid};
  if (geteuid() != 0 && geteuid() != result.uid) {
    return absl::PermissionDeniedError(
        absl::StrCat("--user=", user,
                     " needs memshard to start as root (it "
                     "runs as uid ",
                     geteuid(), ")"));
  }
  return result;
}

absl::Status DropPrivileges(const UnixUser& user) {
  if (getuid() == user.uid && geteuid() == user.uid && getgid() == user.gid &&
      getegid() == user.gid) {
    return absl::OkStatus();
  }
  // Groups first: after setuid() we could no longer change them.
  if (initgroups(user.name.c_str(), user.gid) != 0) {
    return ErrnoError(absl::StrCat("initgroups(", user.name, ")"));
  }
  if (setresgid(user.gid, user.gid, user.gid) != 0) {
    return ErrnoError(absl::StrCat("setresgid(", user.gid, ")"));
  }
  if (setresuid(user.uid, user.uid, user.uid) != 0) {
    return ErrnoError(absl::StrCat("setresuid(", user.uid, ")"));
  }
  if (user.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    return absl::InternalError("dropped privileges, yet could regain root");
  }
  return absl::OkStatus();
}

}  // namespace memshard
