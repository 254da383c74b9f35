// CacheOrca: construction, the text protocol, and the helpers every
// protocol shares. Meta is in cache_orca_meta.cc, binary in
// cache_orca_binary.cc.

#include "server/orca/cache_orca.h"

#include <algorithm>
#include <cstring>

#include "absl/base/attributes.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/admin/stats.h"
#include "server/protocol/text_parser.h"

namespace memshard {
namespace {

void Reply(const Request& request, absl::string_view line, OutputChain* out) {
  if (!request.noreply) out->Append(line);
}

}  // namespace

CacheOrca::CacheOrca(ServerContext* context, WorkerMetrics* metrics)
    : context_(context), metrics_(metrics), handler_(context->store, metrics) {}

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
      if (request.stats_group == "detail") {
        WriteStatsDetail(*context_, request.keys.empty() ? "" : request.keys[0],
                         out);
      } else {
        WriteStats(*context_, request.stats_group, out);
      }
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

namespace {

// Writes `v` in decimal at `p`; returns the end. Value sizes are short: up
// to four digits inline, without absl's out-of-line call (S3 formats one
// per key).
inline char* PutSize(uint64_t v, char* p) {
  if (v >= 10000) return absl::numbers_internal::FastIntToBuffer(v, p);
  const int digits = v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1;
  char* const end = p + digits;
  char* q = end;
  do {
    *--q = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (q != p);
  return end;
}

// "VALUE <key> <flags> <bytes>[ <cas>]\r\n" then the value, composed in
// place in the output chain when it has the room (else here, then copied).
// `item` is moved into the chain (by reference: no temporaries to destroy).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void AppendValue(absl::string_view key,
                                                     cache::ItemRef& item,
                                                     bool with_cas,
                                                     OutputChain* out) {
  constexpr size_t kMaxHeader = 64 + kMaxKeyLength;
  char local[kMaxHeader];
  char* const start = out->PrepareAppend(kMaxHeader);
  char* p = start != nullptr ? start : local;
  memcpy(p, "VALUE ", 6);
  p += 6;
  memcpy(p, key.data(), key.size());
  p += key.size();
  *p++ = ' ';
  const uint32_t flags = item.flags();
  if (flags == 0) {
    *p++ = '0';  // the common case, without the digit loop
  } else {
    p = absl::numbers_internal::FastIntToBuffer(flags, p);
  }
  *p++ = ' ';
  p = PutSize(item.value().size(), p);
  if (with_cas) {
    *p++ = ' ';
    p = absl::numbers_internal::FastIntToBuffer(item.cas(), p);
  }
  *p++ = '\r';
  *p++ = '\n';
  if (start != nullptr) {
    out->CommitAppend(static_cast<size_t>(p - start));
  } else {
    out->Append(absl::string_view(local, p - local));
  }
  absl::string_view bytes = item.value_with_crlf();
  out->AppendItem(std::move(item), bytes);
}

// Keys looked up ahead of composing their replies in a multiget.
constexpr size_t kLookupBatch = CacheOrca::kPrefetchKeys;

}  // namespace

// Always inlined: the common single-get path pays no call for the split.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CacheOrca::AppendValues(
    const Request& request, absl::Span<const absl::string_view> keys,
    int64_t now, OutputChain* out) {
  const bool touch =
      request.command == Command::kGat || request.command == Command::kGats;
  const bool with_cas =
      request.command == Command::kGets || request.command == Command::kGats;
  const int64_t expires_at = touch ? AbsoluteExpiry(request.exptime, now) : 0;
  if (keys.size() == 1) {
    // One key (most requests): no batch.
    cache::ItemRef item = touch ? handler_.GetAndTouch(keys[0], expires_at, now)
                                : handler_.Get(keys[0], now);
    if (DetailOn()) {
      context_->prefix_stats.RecordGet(keys[0], static_cast<bool>(item));
    }
    if (item) AppendValue(keys[0], item, with_cas, out);
    return;
  }
  // A multiget prefetches a batch of keys' buckets and items, looks the keys
  // up and composes after: each value's cache lines are prefetched as its item
  // is found, so those misses overlap the next lookups instead of stalling the
  // copy into the output (S3: a tenth of the server's time was that copy).
  // Lookups run in key order, as before, so their effects (CLOCK, stats)
  // are unchanged.
  cache::ItemRef items[kLookupBatch];
  for (size_t first = 0; first < keys.size(); first += kLookupBatch) {
    const size_t n = std::min(kLookupBatch, keys.size() - first);
    // Every bucket of the batch, then every item they lead to: those misses
    // overlap too, instead of each lookup waiting for its item in turn.
    Prefetch(keys.subspan(first, n));
    for (size_t i = 0; i < n; ++i) {
      const absl::string_view key = keys[first + i];
      items[i] = touch ? handler_.GetAndTouch(key, expires_at, now)
                       : handler_.Get(key, now);
      if (DetailOn()) {
        context_->prefix_stats.RecordGet(key, static_cast<bool>(items[i]));
      }
      if (items[i]) {
        const absl::string_view bytes = items[i].value_with_crlf();
        __builtin_prefetch(bytes.data());
        __builtin_prefetch(bytes.data() + bytes.size() - 1);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (items[i]) {
        AppendValue(keys[first + i], items[i], with_cas, out);
      }
    }
  }
}

void CacheOrca::Prefetch(absl::Span<const absl::string_view> keys) {
  DCHECK_LE(keys.size(), kPrefetchKeys);
  uint64_t tokens[kPrefetchKeys];
  // Every bucket first, so their misses overlap; then each bucket's item,
  // whose address the bucket holds: by then the first bucket has had a
  // lookup's worth of time to arrive, and the rest arrive meanwhile.
  for (size_t i = 0; i < keys.size(); ++i) tokens[i] = PrefetchBucket(keys[i]);
  for (size_t i = 0; i < keys.size(); ++i) PrefetchItem(tokens[i]);
}

void CacheOrca::Retrieve(const Request& request, int64_t now,
                         OutputChain* out) {
  AppendValues(request, request.keys, now, out);
  out->Append("END\r\n");
}

void CacheOrca::RetrieveSlice(const Request& request, size_t first,
                              size_t count, int64_t now, OutputChain* out) {
  DCHECK_LE(first + count, request.keys.size());
  AppendValues(request, absl::MakeConstSpan(request.keys).subspan(first, count),
               now, out);
  if (first + count == request.keys.size()) out->Append("END\r\n");
}

void CacheOrca::OnRefusedStore(const Request& request, int64_t now) {
  if (request.command == Command::kSet && !request.keys.empty()) {
    handler_.store().Delete(request.keys[0], now);
  }
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
  if (DetailOn()) context_->prefix_stats.RecordSet(request.keys[0]);
  const CacheHandler::StoreOutcome stored =
      handler_.Store(mode, request.keys[0], request.flags,
                     AbsoluteExpiry(request.exptime, now), request.value,
                     request.cas_unique, now);
  switch (stored.result) {
    case cache::StoreResult::kStored:
      Reply(request, "STORED\r\n", out);
      break;
    case cache::StoreResult::kNotStored:
      Reply(request, "NOT_STORED\r\n", out);
      break;
    case cache::StoreResult::kExists:
      Reply(request, "EXISTS\r\n", out);
      break;
    case cache::StoreResult::kNotFound:
      Reply(request, "NOT_FOUND\r\n", out);
      break;
    // Errors too honour noreply, as memcached's out_string() does.
    case cache::StoreResult::kTooLarge:
      Reply(request, "SERVER_ERROR object too large for cache\r\n", out);
      break;
    case cache::StoreResult::kOutOfMemory:
      Reply(request, "SERVER_ERROR out of memory storing object\r\n", out);
      break;
  }
}

void CacheOrca::Delete(const Request& request, int64_t now, OutputChain* out) {
  if (DetailOn()) context_->prefix_stats.RecordDelete(request.keys[0]);
  if (handler_.Delete(request.keys[0], /*check_cas=*/false, 0, now) ==
      cache::DeleteResult::kDeleted) {
    Reply(request, "DELETED\r\n", out);
  } else {
    Reply(request, "NOT_FOUND\r\n", out);
  }
}

void CacheOrca::Arithmetic(const Request& request, int64_t now,
                           OutputChain* out) {
  const bool incr = request.command == Command::kIncr;
  cache::DeltaOutcome outcome;
  switch (handler_.Delta(request.keys[0], incr, request.delta,
                         cache::DeltaOptions(), now, &outcome)) {
    case cache::DeltaResult::kOk:
      if (!request.noreply) out->Append(absl::StrCat(outcome.value, "\r\n"));
      break;
    case cache::DeltaResult::kNotFound:
    case cache::DeltaResult::kExists:  // no CAS was given: cannot happen
      Reply(request, "NOT_FOUND\r\n", out);
      break;
    case cache::DeltaResult::kNonNumeric:
      Reply(request,
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            out);
      break;
    case cache::DeltaResult::kOutOfMemory:
      Reply(request, "SERVER_ERROR out of memory\r\n", out);
      break;
  }
}

void CacheOrca::Touch(const Request& request, int64_t now, OutputChain* out) {
  if (handler_.Touch(request.keys[0], AbsoluteExpiry(request.exptime, now),
                     now)) {
    Reply(request, "TOUCHED\r\n", out);
  } else {
    Reply(request, "NOT_FOUND\r\n", out);
  }
}

void CacheOrca::FlushAll(const Request& request, int64_t now,
                         OutputChain* out) {
  handler_.FlushAll(request.delay, now);
  Reply(request, "OK\r\n", out);
}

void CacheOrca::CacheMemlimit(const Request& request, OutputChain* out) {
  // memcached refuses less than 8 MB.
  if (request.memlimit_mb < 8) {
    Reply(request, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
          out);
    return;
  }
  handler_.store().SetMemoryLimit(request.memlimit_mb << 20);
  Reply(request, "OK\r\n", out);
}

}  // namespace memshard
