#include "server/auth/authenticator.h"

#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace memshard {

absl::StatusOr<Authenticator::Entries> Authenticator::Parse(
    absl::string_view text) {
  Entries entries;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", number, ": expected user:password"));
    }
    entries.emplace_back(std::string(line.substr(0, colon)),
                         std::string(line.substr(colon + 1)));
  }
  if (entries.empty()) return absl::InvalidArgumentError("no users");
  return entries;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromText(
    absl::string_view text) {
  absl::StatusOr<Entries> entries = Parse(text);
  if (!entries.ok()) return entries.status();
  std::unique_ptr<Authenticator> auth(new Authenticator(""));
  std::lock_guard<std::shared_mutex> lock(auth->mu_);
  auth->entries_ = *std::move(entries);
  return auth;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(
    std::string path) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(path)));
  absl::Status loaded = auth->Reload();
  if (!loaded.ok()) return loaded;
  return auth;
}

absl::Status Authenticator::Reload() {
  std::ifstream file(path_, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path_));
  std::stringstream text;
  text << file.rdbuf();
  absl::StatusOr<Entries> entries = Parse(text.str());
  if (!entries.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", entries.status().message()));
  }
  std::lock_guard<std::shared_mutex> lock(mu_);
  entries_ = *std::move(entries);
  return absl::OkStatus();
}

bool Authenticator::Check(absl::string_view user,
                          absl::string_view password) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  // No early exit: every entry costs the same whether or not it matches.
  bool ok = false;
  for (const auto& [name, secret] : entries_) {
    const bool match =
        ConstantTimeEquals(name, user) & ConstantTimeEquals(secret, password);
    ok |= match;
  }
  return ok;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the longer input whole, so the time depends on lengths only.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  // Keep the compiler from turning the loop into an early-exit compare.
  volatile unsigned char result = diff;
  return result == 0;
}

bool ParseSaslPlain(absl::string_view message, absl::string_view* user,
                    absl::string_view* password) {
  const size_t first = message.find('\0');
  if (first == absl::string_view::npos) return false;
  const size_t second = message.find('\0', first + 1);
  if (second == absl::string_view::npos) return false;
  if (message.find('\0', second + 1) != absl::string_view::npos) return false;
  *user = message.substr(first + 1, second - first - 1);
  *password = message.substr(second + 1);
  return !user->empty();
}

}  // namespace memshard
