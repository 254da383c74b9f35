// ProxySession: the meta protocol. A meta command is relayed to the key's
// backend as sent (meta backends only), minus its q flag, so every request
// has exactly one reply to match; the session then hides the nominal reply
// q asked to hide (EN for mg, HD for ms, md and ma), as memcached would.
// mn is answered here, after every earlier reply.

#include "absl/strings/str_split.h"
#include "server/orca/proxy_orca.h"

namespace memshard {
namespace {

using backend::BackendOp;
using backend::BackendRequest;
using backend::BackendStatus;

// The request's bytes without the q flag, with "\r\n" line ends.
std::string WithoutQuiet(const MetaRequest& request, absl::string_view raw) {
  size_t eol = raw.find('\n');
  absl::string_view line = raw.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string out;
  out.reserve(raw.size());
  for (absl::string_view token : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    if (token == "q") continue;
    if (!out.empty()) out.push_back(' ');
    out.append(token.data(), token.size());
  }
  out.append("\r\n");
  if (request.command == MetaCommand::kSet) {
    out.append(request.value.data(), request.value.size());
    out.append("\r\n");
  }
  return out;
}

}  // namespace

ProxySession::Outcome ProxySession::ExecuteMeta(const MetaRequest& request,
                                                absl::string_view raw,
                                                int64_t now) {
  orca_->metrics().Add(Counter::cmd_meta);
  Call* call = NewCall(Protocol::kMeta);
  call->meta = request.command;
  call->quiet = request.quiet;
  call->now = now;
  switch (request.command) {
    case MetaCommand::kGet:
    case MetaCommand::kSet:
    case MetaCommand::kDelete:
    case MetaCommand::kArithmetic:
    case MetaCommand::kDebug: {
      call->entries.resize(1);
      if (orca_->backend_protocol() != backend::BackendProtocol::kMeta) {
        // Composed as an error: a text backend cannot answer meta.
        call->entries[0].status = BackendStatus::kClientError;
        call->entries[0].answered = true;
        break;
      }
      call->keys.emplace_back(request.key);
      call->value = WithoutQuiet(request, raw);
      BackendRequest r;
      r.op = BackendOp::kMetaRaw;
      r.key = call->keys[0];  // decoded: placement hashes the real key
      r.value = call->value;
      Send(call, 0, r);
      const bool write = request.command != MetaCommand::kGet &&
                         request.command != MetaCommand::kDebug;
      if (orca_->l1l2() && write) orca_->l1().Delete(request.key, now);
      break;
    }
    default:
      break;  // mn (and anything else) is composed here
  }
  Submit(call);
  return Outcome::kContinue;
}

void ProxySession::ComposeMeta(Call* call, ReplyOut out) {
  if (call->meta == MetaCommand::kNoop) {
    out.Append("MN\r\n");
    return;
  }
  if (call->entries.empty()) {
    out.Append("ERROR\r\n");
    return;
  }
  const Entry& e = call->entries[0];
  if (backend::IsLocalFailure(e.status)) {
    orca_->metrics().Add(Counter::protocol_errors);
    out.Append(BackendFailureMessage(e.status));
    return;
  }
  if (e.status != BackendStatus::kRaw) {
    out.Append("SERVER_ERROR meta commands need --backend_protocol=meta\r\n");
    return;
  }
  // A write's L2 answer is in: drop whatever L1 cached meanwhile.
  if (orca_->l1l2() && call->meta != MetaCommand::kGet &&
      call->meta != MetaCommand::kDebug) {
    orca_->l1().Delete(call->keys[0], absl::ToUnixSeconds(absl::Now()));
  }
  if (call->quiet && e.value.size() >= 2) {
    const absl::string_view code = absl::string_view(e.value).substr(0, 2);
    const bool nominal = call->meta == MetaCommand::kGet     ? code == "EN"
                         : call->meta == MetaCommand::kDebug ? false
                                                             : code == "HD";
    if (nominal) return;
  }
  out.Append(e.value);
}

}  // namespace memshard
