// ProxySession: the text protocol. get, gets, gat and gats go to the
// backends a window of keys at a time (see proxy_orca.h); every other
// command is one call with one reply.

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "server/orca/cache_handler.h"
#include "server/orca/proxy_orca.h"

namespace memshard {
namespace {

using backend::BackendOp;
using backend::BackendRequest;
using backend::BackendStatus;

bool IsBackendError(BackendStatus s) {
  return s == BackendStatus::kError || s == BackendStatus::kClientError ||
         s == BackendStatus::kServerError;
}

}  // namespace

ProxySession::Outcome ProxySession::ExecuteText(const Request& request,
                                                int64_t now) {
  switch (request.command) {
    case Command::kQuit:
      return Outcome::kClose;
    case Command::kStats:
    case Command::kCacheMemlimit:
      // Answered by the local orchestrator, straight into the output.
      if (!calls_.empty()) return Outcome::kWaitIdle;
      return orca_->local().Execute(request, now, out_) ==
                     CacheOrca::Outcome::kClose
                 ? Outcome::kClose
                 : Outcome::kContinue;
    default:
      break;
  }
  Call* call = NewCall(Protocol::kText);
  call->command = request.command;
  call->quiet = request.noreply;
  call->now = now;
  switch (request.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
      TextRetrieve(call, request, now);
      break;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      TextStore(call, request);
      break;
    case Command::kDelete:
    case Command::kIncr:
    case Command::kDecr:
    case Command::kTouch:
      TextKeyed(call, request);
      break;
    case Command::kFlushAll:
      TextFlush(call, request, now);
      break;
    default:
      // version, verbosity, unknown: composed locally, in order.
      break;
  }
  Submit(call);
  return Outcome::kContinue;
}

void ProxySession::OnRefusedStore(const Request& request, int64_t now) {
  if (request.command != Command::kSet || request.keys.empty()) return;
  Call* call = NewCall(Protocol::kText);
  call->command = Command::kDelete;
  call->silent = true;
  call->now = now;
  Request del;
  del.command = Command::kDelete;
  del.keys.push_back(request.keys[0]);
  TextKeyed(call, del);
  Submit(call);
}

void ProxySession::TextRetrieve(Call* call, const Request& request,
                                int64_t now) {
  const size_t n = request.keys.size();
  DCHECK_LE(n, size_t{1} << kTagIndexBits);  // see kTagIndexBits
  call->keys.reserve(n);
  for (absl::string_view key : request.keys) call->keys.emplace_back(key);
  call->entries.resize(n);
  call->exptime = request.exptime;
  call->now = now;
  SendWindow(call);
}

bool ProxySession::IsRetrieval(const Call& call) {
  return call.protocol == Protocol::kText &&
         (call.command == Command::kGet || call.command == Command::kGets ||
          call.command == Command::kGat || call.command == Command::kGats);
}

void ProxySession::SendWindow(Call* call) {
  const size_t begin = call->window_end;
  const size_t end = std::min(call->keys.size(), begin + kRetrievalWindow);
  call->window_begin = begin;
  call->window_end = end;
  // The first window runs in the request's turn; later ones read the clock.
  const int64_t now = begin == 0 ? call->now : absl::ToUnixSeconds(absl::Now());
  BackendRequest r;
  switch (call->command) {
    case Command::kGets:
      r.op = BackendOp::kGets;
      break;
    case Command::kGat:
      r.op = BackendOp::kGat;
      break;
    case Command::kGats:
      r.op = BackendOp::kGats;
      break;
    default:
      r.op = BackendOp::kGet;
      break;
  }
  r.exptime = call->exptime;
  // gets and gats need L2's CAS; only get is served from L1.
  const bool from_l1 = orca_->l1l2() && call->command == Command::kGet;
  for (size_t i = begin; i < end; ++i) {
    if (from_l1) {
      cache::ItemRef item = orca_->l1().Get(call->keys[i], now);
      if (item) {
        Entry& e = call->entries[i];
        e.status = BackendStatus::kHit;
        e.flags = item.flags();
        e.item = std::move(item);
        e.answered = true;
        continue;
      }
    }
    r.key = call->keys[i];
    Send(call, static_cast<uint32_t>(i), r);
  }
}

void ProxySession::TextStore(Call* call, const Request& request) {
  call->keys.emplace_back(request.keys[0]);
  call->entries.resize(1);
  call->flags = request.flags;
  call->exptime = request.exptime;
  BackendRequest r;
  switch (request.command) {
    case Command::kAdd:
      r.op = BackendOp::kAdd;
      break;
    case Command::kReplace:
      r.op = BackendOp::kReplace;
      break;
    case Command::kAppend:
      r.op = BackendOp::kAppend;
      break;
    case Command::kPrepend:
      r.op = BackendOp::kPrepend;
      break;
    case Command::kCas:
      r.op = BackendOp::kCas;
      break;
    default:
      r.op = BackendOp::kSet;
      break;
  }
  r.key = call->keys[0];
  r.value = request.value;
  r.flags = request.flags;
  r.exptime = request.exptime;
  r.cas = request.cas_unique;
  // L1 gets the same bytes once L2 has stored them.
  if (orca_->l1l2() && r.op != BackendOp::kAppend &&
      r.op != BackendOp::kPrepend) {
    call->value.assign(request.value.data(), request.value.size());
  }
  Send(call, 0, r);
}

void ProxySession::TextKeyed(Call* call, const Request& request) {
  call->keys.emplace_back(request.keys[0]);
  call->entries.resize(1);
  call->exptime = request.exptime;
  BackendRequest r;
  r.key = call->keys[0];
  const int64_t now = call->now;
  cache::Store& l1 = orca_->l1();
  switch (request.command) {
    case Command::kDelete:
      r.op = BackendOp::kDelete;
      if (orca_->l1l2()) l1.Delete(r.key, now);
      break;
    case Command::kTouch:
      r.op = BackendOp::kTouch;
      r.exptime = request.exptime;
      if (orca_->l1l2()) {
        l1.Touch(r.key, AbsoluteExpiry(request.exptime, now), now);
      }
      break;
    case Command::kIncr:
    case Command::kDecr:
      r.op = request.command == Command::kIncr ? BackendOp::kIncr
                                               : BackendOp::kDecr;
      r.delta = request.delta;
      break;
    default:
      break;
  }
  Send(call, 0, r);
}

void ProxySession::TextFlush(Call* call, const Request& request, int64_t now) {
  if (orca_->l1l2()) {
    orca_->l1().FlushAll(
        request.delay > 0 ? AbsoluteExpiry(request.delay, now) - 1 : now, now);
  }
  BackendRequest r;
  r.op = BackendOp::kFlushAll;
  r.delay = request.delay > 0 ? request.delay : -1;
  Broadcast(call, r);
}

// l1l2: what L1 does once L2 has answered a text request.
void ProxySession::TextAfterL2(Call* call) {
  if (!orca_->l1l2() || call->entries.empty()) return;
  // A retrieval runs this once per window (its keys below); anything else
  // once.
  if (!IsRetrieval(*call)) {
    if (call->stage > 0) return;
    call->stage = 1;
  }
  cache::Store& l1 = orca_->l1();
  // The time L2 answered: L1's expiries are absolute from it.
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  switch (call->command) {
    case Command::kGet:
      if (!orca_->fill_on_read()) return;
      for (size_t i = call->window_begin; i < call->window_end; ++i) {
        const Entry& e = call->entries[i];
        // Only L2 hits whose TTL L2 told us (meta); a TTL of 0 is about to
        // expire. Add, not set: a write that reached L1 meanwhile wins.
        if (e.status != BackendStatus::kHit || e.item || e.ttl == 0 ||
            e.ttl == backend::kTtlUnknown) {
          continue;
        }
        const int64_t expires_at =
            e.ttl == backend::kTtlNever ? 0 : now + e.ttl;
        l1.Put(cache::StoreMode::kAdd, call->keys[i], e.flags, expires_at,
               e.value, 0, now);
      }
      return;
    case Command::kGat:
    case Command::kGats: {
      for (size_t i = call->window_begin; i < call->window_end; ++i) {
        const Entry& k = call->entries[i];
        const int64_t expires_at = AbsoluteExpiry(call->exptime, now);
        if (k.status != BackendStatus::kHit) {
          l1.Delete(call->keys[i], now);
        } else if (orca_->fill_on_read()) {
          if (l1.Put(cache::StoreMode::kSet, call->keys[i], k.flags, expires_at,
                     k.value, 0, now) != cache::StoreResult::kStored) {
            l1.Delete(call->keys[i], now);
          }
        } else {
          l1.Touch(call->keys[i], expires_at, now);
        }
      }
      return;
    }
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kCas: {
      const Entry& e = call->entries[0];
      const absl::string_view key = call->keys[0];
      if (e.status != BackendStatus::kStored) {
        // Not stored, or unknown: L1 must not keep what may be stale.
        l1.Delete(key, now);
        return;
      }
      const cache::StoreMode mode = orca_->fill_on_read()
                                        ? cache::StoreMode::kSet
                                        : cache::StoreMode::kReplace;
      const cache::StoreResult r =
          l1.Put(mode, key, call->flags, AbsoluteExpiry(call->exptime, now),
                 call->value, 0, now);
      if (r != cache::StoreResult::kStored &&
          !(mode == cache::StoreMode::kReplace &&
            r == cache::StoreResult::kNotStored)) {
        l1.Delete(key, now);
      }
      return;
    }
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kIncr:
    case Command::kDecr:
      l1.Delete(call->keys[0], now);
      return;
    default:
      return;
  }
}

bool ProxySession::ComposeFailure(absl::Span<const Entry> entries,
                                  ReplyOut out) {
  for (const Entry& e : entries) {
    if (backend::IsLocalFailure(e.status)) {
      orca_->metrics().Add(Counter::protocol_errors);
      out.Append(BackendFailureMessage(e.status));
      return true;
    }
  }
  for (const Entry& e : entries) {
    if (!IsBackendError(e.status)) continue;
    if (e.status == BackendStatus::kError) {
      out.Append("ERROR\r\n");
    } else {
      out.Append(e.status == BackendStatus::kClientError ? "CLIENT_ERROR "
                                                         : "SERVER_ERROR ");
      out.Append(e.value);
      out.Append("\r\n");
    }
    return true;
  }
  return false;
}

bool ProxySession::ComposeWindow(Call* call, ReplyOut out) {
  WorkerMetrics& m = orca_->metrics();
  const size_t begin = call->window_begin;
  const size_t end = call->window_end;
  // A failure ends the reply: it is the whole reply if this is the first
  // window, else it follows the values already written.
  if (ComposeFailure(
          absl::MakeConstSpan(call->entries).subspan(begin, end - begin),
          out)) {
    return true;
  }
  const bool touch =
      call->command == Command::kGat || call->command == Command::kGats;
  const bool with_cas =
      call->command == Command::kGets || call->command == Command::kGats;
  uint64_t hits = 0;
  for (size_t i = begin; i < end; ++i) {
    Entry& e = call->entries[i];
    if (e.status != BackendStatus::kHit) continue;
    ++hits;
    const std::string& key = call->keys[i];
    char header[64 + kMaxKeyLength];
    char* p = header;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key.data(), key.size());
    p += key.size();
    *p++ = ' ';
    p = absl::numbers_internal::FastIntToBuffer(e.flags, p);
    *p++ = ' ';
    const size_t size = e.item ? e.item.value().size() : e.value.size();
    p = absl::numbers_internal::FastIntToBuffer(static_cast<uint64_t>(size), p);
    if (with_cas) {
      *p++ = ' ';
      p = absl::numbers_internal::FastIntToBuffer(e.cas, p);
    }
    *p++ = '\r';
    *p++ = '\n';
    out.Append(absl::string_view(header, p - header));
    if (e.item) {
      const absl::string_view bytes = e.item.value_with_crlf();
      out.AppendItem(std::move(e.item), bytes);
    } else {
      out.Append(e.value);
      out.Append("\r\n");
      std::string().swap(e.value);  // composed: its memory goes now
    }
  }
  const uint64_t n = end - begin;
  if (touch) {
    m.Add(Counter::cmd_touch, n);
    m.Add(Counter::touch_hits, hits);
    m.Add(Counter::touch_misses, n - hits);
  } else {
    m.Add(Counter::cmd_get, n);
    m.Add(Counter::get_hits, hits);
    m.Add(Counter::get_misses, n - hits);
  }
  call->window_begin = end;
  if (end < call->keys.size()) return false;
  out.Append("END\r\n");
  return true;
}

void ProxySession::ComposeText(Call* call, ReplyOut out) {
  DCHECK(!IsRetrieval(*call));  // ComposeWindow's
  WorkerMetrics& m = orca_->metrics();
  if (call->silent) return;
  const bool quiet = call->quiet;
  // noreply silences errors too, as memcached's out_string does: a reply
  // the client does not read would desynchronize it.
  std::string discarded;
  if (ComposeFailure(call->entries, quiet ? ReplyOut(&discarded) : out)) {
    return;
  }
  auto line = [&](absl::string_view text) {
    if (!quiet) out.Append(text);
  };
  const BackendStatus status =
      call->entries.empty() ? BackendStatus::kOk : call->entries[0].status;
  switch (call->command) {
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas: {
      m.Add(Counter::cmd_set);
      const bool cas = call->command == Command::kCas;
      switch (status) {
        case BackendStatus::kStored:
          if (cas) m.Add(Counter::cas_hits);
          line("STORED\r\n");
          break;
        case BackendStatus::kNotStored:
          line("NOT_STORED\r\n");
          break;
        case BackendStatus::kExists:
          if (cas) m.Add(Counter::cas_badval);
          line("EXISTS\r\n");
          break;
        default:
          if (cas) m.Add(Counter::cas_misses);
          line("NOT_FOUND\r\n");
          break;
      }
      return;
    }
    case Command::kDelete:
      m.Add(Counter::cmd_delete);
      if (status == BackendStatus::kDeleted) {
        m.Add(Counter::delete_hits);
        line("DELETED\r\n");
      } else {
        m.Add(Counter::delete_misses);
        line("NOT_FOUND\r\n");
      }
      return;
    case Command::kIncr:
    case Command::kDecr: {
      const bool incr = call->command == Command::kIncr;
      if (status == BackendStatus::kNumber) {
        m.Add(incr ? Counter::incr_hits : Counter::decr_hits);
        if (!quiet) {
          out.Append(call->entries[0].value);
          out.Append("\r\n");
        }
      } else {
        m.Add(incr ? Counter::incr_misses : Counter::decr_misses);
        line("NOT_FOUND\r\n");
      }
      return;
    }
    case Command::kTouch:
      m.Add(Counter::cmd_touch);
      if (status == BackendStatus::kTouched) {
        m.Add(Counter::touch_hits);
        line("TOUCHED\r\n");
      } else {
        m.Add(Counter::touch_misses);
        line("NOT_FOUND\r\n");
      }
      return;
    case Command::kFlushAll:
      m.Add(Counter::cmd_flush);
      line("OK\r\n");
      return;
    case Command::kVersion:
      out.Append(absl::StrCat("VERSION ", kVersion, "\r\n"));
      return;
    case Command::kVerbosity:
      line("OK\r\n");
      return;
    default:
      out.Append("ERROR\r\n");
      return;
  }
}

}  // namespace memshard
