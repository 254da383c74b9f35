#include "server/orca/cache_orca.h"

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/admin/stats.h"
#include "server/protocol/text_parser.h"

namespace memshard {
namespace {

constexpr int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;

void Reply(const Request& request, absl::string_view line, OutputChain* out) {
  if (!request.noreply) out->Append(line);
}

}  // namespace

int64_t AbsoluteExpiry(int64_t exptime, int64_t now) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;  // long past: expired at once
  if (exptime > kMaxRelativeExptime) return exptime;
  return now + exptime;
}

CacheOrca::CacheOrca(ServerContext* context, WorkerMetrics* metrics)
    : context_(context), store_(context->store), metrics_(metrics) {}

CacheOrca::Outcome CacheOrca::Execute(const Request& request, int64_t now,
                                      OutputChain* out) {
  switch (request.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
      Retrieve(request, now, out);
      break;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      Store(request, now, out);
      break;
    case Command::kDelete:
      Delete(request, now, out);
      break;
    case Command::kIncr:
    case Command::kDecr:
      Arithmetic(request, now, out);
      break;
    case Command::kTouch:
      Touch(request, now, out);
      break;
    case Command::kFlushAll:
      FlushAll(request, now, out);
      break;
    case Command::kVersion:
      out->Append(absl::StrCat("VERSION ", kVersion, "\r\n"));
      break;
    case Command::kVerbosity:
      Reply(request, "OK\r\n", out);
      break;
    case Command::kQuit:
      return Outcome::kClose;
    case Command::kStats:
      WriteStats(*context_, request.stats_group, out);
      break;
    case Command::kCacheMemlimit:
      CacheMemlimit(request, out);
      break;
    case Command::kNone:
      out->Append("ERROR\r\n");
      break;
  }
  return Outcome::kContinue;
}

void CacheOrca::Retrieve(const Request& request, int64_t now,
                         OutputChain* out) {
  const bool touch =
      request.command == Command::kGat || request.command == Command::kGats;
  const bool with_cas =
      request.command == Command::kGets || request.command == Command::kGats;
  const int64_t expires_at = touch ? AbsoluteExpiry(request.exptime, now) : 0;
  uint64_t hits = 0;
  for (absl::string_view key : request.keys) {
    cache::ItemRef item = touch ? store_->GetAndTouch(key, expires_at, now)
                                : store_->Get(key, now);
    if (!item) continue;
    ++hits;
    // "VALUE <key> <flags> <bytes>[ <cas>]\r\n"
    char header[64 + kMaxKeyLength];
    char* p = header;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key.data(), key.size());
    p += key.size();
    *p++ = ' ';
    p = absl::numbers_internal::FastIntToBuffer(item.flags(), p);
    *p++ = ' ';
    p = absl::numbers_internal::FastIntToBuffer(
        static_cast<uint64_t>(item.value().size()), p);
    if (with_cas) {
      *p++ = ' ';
      p = absl::numbers_internal::FastIntToBuffer(item.cas(), p);
    }
    *p++ = '\r';
    *p++ = '\n';
    out->Append(absl::string_view(header, p - header));
    absl::string_view bytes = item.value_with_crlf();
    out->AppendItem(std::move(item), bytes);
  }
  out->Append("END\r\n");
  const uint64_t keys = request.keys.size();
  if (touch) {
    metrics_->Add(Counter::cmd_touch, keys);
    metrics_->Add(Counter::touch_hits, hits);
    metrics_->Add(Counter::touch_misses, keys - hits);
  }
  metrics_->Add(Counter::cmd_get, keys);
  metrics_->Add(Counter::get_hits, hits);
  metrics_->Add(Counter::get_misses, keys - hits);
}

void CacheOrca::Store(const Request& request, int64_t now, OutputChain* out) {
  cache::StoreMode mode = cache::StoreMode::kSet;
  switch (request.command) {
    case Command::kAdd:
      mode = cache::StoreMode::kAdd;
      break;
    case Command::kReplace:
      mode = cache::StoreMode::kReplace;
      break;
    case Command::kAppend:
      mode = cache::StoreMode::kAppend;
      break;
    case Command::kPrepend:
      mode = cache::StoreMode::kPrepend;
      break;
    case Command::kCas:
      mode = cache::StoreMode::kCas;
      break;
    default:
      break;
  }
  metrics_->Add(Counter::cmd_set);
  cache::StoreResult result =
      store_->Put(mode, request.keys[0], request.flags,
                  AbsoluteExpiry(request.exptime, now), request.value,
                  request.cas_unique, now);
  const bool cas = mode == cache::StoreMode::kCas;
  switch (result) {
    case cache::StoreResult::kStored:
      if (cas) metrics_->Add(Counter::cas_hits);
      Reply(request, "STORED\r\n", out);
      break;
    case cache::StoreResult::kNotStored:
      Reply(request, "NOT_STORED\r\n", out);
      break;
    case cache::StoreResult::kExists:
      metrics_->Add(Counter::cas_badval);
      Reply(request, "EXISTS\r\n", out);
      break;
    case cache::StoreResult::kNotFound:
      if (cas) metrics_->Add(Counter::cas_misses);
      Reply(request, "NOT_FOUND\r\n", out);
      break;
    case cache::StoreResult::kTooLarge:
      out->Append("SERVER_ERROR object too large for cache\r\n");
      break;
    case cache::StoreResult::kOutOfMemory:
      out->Append("SERVER_ERROR out of memory storing object\r\n");
      break;
  }
}

void CacheOrca::Delete(const Request& request, int64_t now, OutputChain* out) {
  metrics_->Add(Counter::cmd_delete);
  if (store_->Delete(request.keys[0], now)) {
    metrics_->Add(Counter::delete_hits);
    Reply(request, "DELETED\r\n", out);
  } else {
    metrics_->Add(Counter::delete_misses);
    Reply(request, "NOT_FOUND\r\n", out);
  }
}

void CacheOrca::Arithmetic(const Request& request, int64_t now,
                           OutputChain* out) {
  const bool incr = request.command == Command::kIncr;
  uint64_t value = 0;
  cache::DeltaResult result =
      store_->Delta(request.keys[0], incr, request.delta, now, &value);
  switch (result) {
    case cache::DeltaResult::kOk:
      metrics_->Add(incr ? Counter::incr_hits : Counter::decr_hits);
      if (!request.noreply) out->Append(absl::StrCat(value, "\r\n"));
      break;
    case cache::DeltaResult::kNotFound:
      metrics_->Add(incr ? Counter::incr_misses : Counter::decr_misses);
      Reply(request, "NOT_FOUND\r\n", out);
      break;
    case cache::DeltaResult::kNonNumeric:
      out->Append(
          "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
      break;
    case cache::DeltaResult::kOutOfMemory:
      out->Append("SERVER_ERROR out of memory\r\n");
      break;
  }
}

void CacheOrca::Touch(const Request& request, int64_t now, OutputChain* out) {
  metrics_->Add(Counter::cmd_touch);
  if (store_->Touch(request.keys[0], AbsoluteExpiry(request.exptime, now),
                    now)) {
    metrics_->Add(Counter::touch_hits);
    Reply(request, "TOUCHED\r\n", out);
  } else {
    metrics_->Add(Counter::touch_misses);
    Reply(request, "NOT_FOUND\r\n", out);
  }
}

void CacheOrca::FlushAll(const Request& request, int64_t now,
                         OutputChain* out) {
  metrics_->Add(Counter::cmd_flush);
  int64_t at = request.delay > 0 ? AbsoluteExpiry(request.delay, now) : now;
  store_->FlushAll(at, now);
  Reply(request, "OK\r\n", out);
}

void CacheOrca::CacheMemlimit(const Request& request, OutputChain* out) {
  // memcached refuses less than 8 MB.
  if (request.memlimit_mb < 8) {
    out->Append("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n");
    return;
  }
  store_->SetMemoryLimit(request.memlimit_mb << 20);
  Reply(request, "OK\r\n", out);
}

}  // namespace memshard
