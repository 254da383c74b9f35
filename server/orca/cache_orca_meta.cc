// CacheOrca: the meta protocol (mg, ms, md, ma, mn, me). Replies follow
// memcached 1.6's proto_text.c byte for byte: return flags are answered in
// request order, O and k are echoed on misses too, q hides only the nominal
// reply (HD, or EN for mg), and errors are always sent.

#include <charconv>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/orca/cache_orca.h"

namespace memshard {
namespace {

// Index of the first flag `flag` in request order, or -1.
int FlagIndex(const MetaRequest& request, char flag) {
  for (size_t i = 0; i < request.flag_count; ++i) {
    if (request.flags[i].flag == flag) return static_cast<int>(i);
  }
  return -1;
}

// memcached's "t": seconds left, -1 for never.
int64_t TtlLeft(int64_t expires_at, int64_t now) {
  return expires_at == 0 ? -1 : expires_at - now;
}

std::string Digits(uint64_t value) {
  char buffer[20];
  return std::string(buffer,
                     std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
}

}  // namespace

CacheOrca::Outcome CacheOrca::Execute(const MetaRequest& request, int64_t now,
                                      OutputChain* out) {
  metrics_->Add(Counter::cmd_meta);
  switch (request.command) {
    case MetaCommand::kGet:
      MetaGet(request, now, out);
      break;
    case MetaCommand::kSet:
      MetaSet(request, now, out);
      break;
    case MetaCommand::kDelete:
      MetaDelete(request, now, out);
      break;
    case MetaCommand::kArithmetic:
      MetaArithmetic(request, now, out);
      break;
    case MetaCommand::kDebug:
      MetaDebug(request, now, out);
      break;
    case MetaCommand::kNoop:
      out->Append("MN\r\n");
      break;
    case MetaCommand::kNone:
      out->Append("ERROR\r\n");
      break;
  }
  return Outcome::kContinue;
}

void CacheOrca::AppendMetaKey(absl::string_view key, bool binary) {
  line_ += " k";
  if (binary) {
    line_ += absl::Base64Escape(key);
    line_ += " b";
  } else {
    line_.append(key.data(), key.size());
  }
}

void CacheOrca::MetaGet(const MetaRequest& request, int64_t now,
                        OutputChain* out) {
  const int ttl_index = FlagIndex(request, 'T');
  cache::MetaGetOptions options;
  options.bump = !request.no_bump;
  if (request.has_ttl) {
    options.set_expiry = true;
    options.expires_at = AbsoluteExpiry(request.ttl, now);
  }
  if (request.vivify) {
    options.vivify = true;
    options.vivify_expires_at = AbsoluteExpiry(request.vivify_ttl, now);
    options.key_binary = request.base64_key;
    options.vivify_after_ttl = FlagIndex(request, 'N') > ttl_index;
  }
  if (request.has_recache) {
    options.recache = true;
    options.recache_below = AbsoluteExpiry(request.recache_ttl, now);
    options.recache_after_ttl =
        ttl_index >= 0 && ttl_index < FlagIndex(request, 'R');
  }
  cache::ItemMeta meta;
  cache::ItemRef item = handler_.MetaGet(request.key, options, now, &meta);
  line_.clear();
  if (!item) {
    if (request.quiet) return;
    line_ = "EN";
    for (size_t i = 0; i < request.flag_count; ++i) {
      const MetaFlag& f = request.flags[i];
      if (f.flag == 'O') {
        absl::StrAppend(&line_, " O", f.token);
      } else if (f.flag == 'k') {
        AppendMetaKey(request.key, request.base64_key);
      }
    }
    line_ += "\r\n";
    out->Append(line_);
    return;
  }
  if (request.return_value) {
    absl::StrAppend(&line_, "VA ", item.value().size());
  } else {
    line_ = "HD";
  }
  // The TTL "t" reports is the one in force when its flag is reached:
  // memcached applies T and N in request order.
  int64_t expiry = meta.expiry_before;
  for (size_t i = 0; i < request.flag_count; ++i) {
    const MetaFlag& f = request.flags[i];
    switch (f.flag) {
      case 'T':
        expiry = options.expires_at;
        break;
      case 'N':
        if (meta.created) expiry = options.vivify_expires_at;
        break;
      case 's':
        absl::StrAppend(&line_, " s", item.value().size());
        break;
      case 't':
        absl::StrAppend(&line_, " t", TtlLeft(expiry, now));
        break;
      case 'c':
        absl::StrAppend(&line_, " c", item.cas());
        break;
      case 'f':
        absl::StrAppend(&line_, " f", item.flags());
        break;
      case 'l':
        absl::StrAppend(&line_, " l", now - meta.last_access);
        break;
      case 'h':
        line_ += meta.fetched ? " h1" : " h0";
        break;
      case 'O':
        absl::StrAppend(&line_, " O", f.token);
        break;
      case 'k':
        AppendMetaKey(item.key(), item.key_binary());
        break;
      default:
        break;
    }
  }
  if (meta.token_sent) line_ += " Z";
  if (meta.stale) line_ += " X";
  if (meta.won) line_ += " W";
  line_ += "\r\n";
  out->Append(line_);
  if (request.return_value) {
    const absl::string_view bytes = item.value_with_crlf();
    out->AppendItem(std::move(item), bytes);
  }
}

void CacheOrca::MetaSet(const MetaRequest& request, int64_t now,
                        OutputChain* out) {
  cache::StoreMode mode = cache::StoreMode::kSet;
  uint64_t cas_in = 0;
  switch (request.set_mode) {
    case MetaSetMode::kSet:
    case MetaSetMode::kReplace:
      // A CAS turns set and replace into cas (replace + cas is cas).
      if (request.has_cas) {
        mode = cache::StoreMode::kCas;
        cas_in = request.cas;
      } else {
        mode = request.set_mode == MetaSetMode::kSet
                   ? cache::StoreMode::kSet
                   : cache::StoreMode::kReplace;
      }
      break;
    case MetaSetMode::kAdd:
      mode = cache::StoreMode::kAdd;
      break;
    case MetaSetMode::kAppend:
    case MetaSetMode::kPrepend:
      mode = request.set_mode == MetaSetMode::kAppend
                 ? cache::StoreMode::kAppend
                 : cache::StoreMode::kPrepend;
      cas_in = request.has_cas ? request.cas : 0;
      break;
  }
  cache::PutOptions options;
  options.allow_stale = request.invalidate && mode == cache::StoreMode::kCas;
  options.key_binary = request.base64_key;
  const CacheHandler::StoreOutcome stored =
      handler_.Store(mode, request.key, request.client_flags,
                     request.has_ttl ? AbsoluteExpiry(request.ttl, now) : 0,
                     request.value, cas_in, now, options);
  line_.clear();
  switch (stored.result) {
    case cache::StoreResult::kStored:
      if (request.quiet) return;
      line_ = "HD";
      break;
    case cache::StoreResult::kNotStored:
      line_ = "NS";
      break;
    case cache::StoreResult::kExists:
      line_ = "EX";
      break;
    case cache::StoreResult::kNotFound:
      line_ = "NF";
      break;
    case cache::StoreResult::kTooLarge:
      out->Append("SERVER_ERROR object too large for cache\r\n");
      return;
    case cache::StoreResult::kOutOfMemory:
      out->Append("SERVER_ERROR out of memory storing object\r\n");
      return;
  }
  for (size_t i = 0; i < request.flag_count; ++i) {
    const MetaFlag& f = request.flags[i];
    if (f.flag == 'O') {
      absl::StrAppend(&line_, " O", f.token);
    } else if (f.flag == 'k') {
      AppendMetaKey(request.key, request.base64_key);
    } else if (f.flag == 'c') {
      absl::StrAppend(&line_, " c", stored.cas);
    }
  }
  line_ += "\r\n";
  out->Append(line_);
}

void CacheOrca::MetaDelete(const MetaRequest& request, int64_t now,
                           OutputChain* out) {
  const cache::DeleteResult result =
      request.invalidate
          ? handler_.Invalidate(request.key, request.has_cas, request.cas,
                                request.has_ttl,
                                AbsoluteExpiry(request.ttl, now), now)
          : handler_.Delete(request.key, request.has_cas, request.cas, now);
  line_.clear();
  switch (result) {
    case cache::DeleteResult::kDeleted:
      if (request.quiet) return;
      line_ = "HD";
      break;
    case cache::DeleteResult::kNotFound:
      line_ = "NF";
      break;
    case cache::DeleteResult::kExists:
      line_ = "EX";
      break;
  }
  for (size_t i = 0; i < request.flag_count; ++i) {
    const MetaFlag& f = request.flags[i];
    if (f.flag == 'O') {
      absl::StrAppend(&line_, " O", f.token);
    } else if (f.flag == 'k') {
      AppendMetaKey(request.key, request.base64_key);
    }
  }
  line_ += "\r\n";
  out->Append(line_);
}

void CacheOrca::MetaArithmetic(const MetaRequest& request, int64_t now,
                               OutputChain* out) {
  cache::DeltaOptions options;
  options.check_cas = request.has_cas;
  options.cas_in = request.cas;
  const int64_t ttl = AbsoluteExpiry(request.ttl, now);
  const int64_t vivify_ttl = AbsoluteExpiry(request.vivify_ttl, now);
  if (request.has_ttl) {
    options.set_expiry = true;
    options.expires_at = ttl;
  }
  cache::DeltaOutcome outcome;
  cache::DeltaResult result = cache::DeltaResult::kNotFound;
  bool created = false;
  bool not_stored = false;
  // On a miss with N, create the item with the J value; if another client
  // creates it first, apply the delta to theirs instead.
  for (int attempt = 0; attempt < 4; ++attempt) {
    result = handler_.Delta(request.key, !request.decrement, request.delta,
                            options, now, &outcome);
    if (result != cache::DeltaResult::kNotFound || !request.vivify) break;
    const int64_t expiry =
        request.has_ttl && FlagIndex(request, 'T') > FlagIndex(request, 'N')
            ? ttl
            : vivify_ttl;
    cache::PutOptions put;
    put.key_binary = request.base64_key;
    const CacheHandler::StoreOutcome stored =
        handler_.Store(cache::StoreMode::kAdd, request.key, 0, expiry,
                       Digits(request.initial), 0, now, put);
    if (stored.result == cache::StoreResult::kStored) {
      created = true;
      outcome.value = request.initial;
      outcome.cas = stored.cas;
      outcome.expiry_before = 0;
      break;
    }
    if (stored.result != cache::StoreResult::kNotStored) {
      out->Append("SERVER_ERROR Out of memory allocating new item\r\n");
      return;
    }
    not_stored = true;
  }
  line_.clear();
  const bool ok = created || result == cache::DeltaResult::kOk;
  if (ok) {
    // memcached hides HD under q only for a delta, not for a creation.
    if (request.quiet && !created) return;
    const std::string digits = Digits(outcome.value);
    if (request.return_value) {
      absl::StrAppend(&line_, "VA ", digits.size());
    } else {
      line_ = "HD";
    }
    int64_t expiry = outcome.expiry_before;
    for (size_t i = 0; i < request.flag_count; ++i) {
      const MetaFlag& f = request.flags[i];
      switch (f.flag) {
        case 'c':
          absl::StrAppend(&line_, " c", outcome.cas);
          break;
        case 't':
          absl::StrAppend(&line_, " t", TtlLeft(expiry, now));
          break;
        case 'T':
          expiry = ttl;
          break;
        case 'N':
          if (created) expiry = vivify_ttl;
          break;
        case 'O':
          absl::StrAppend(&line_, " O", f.token);
          break;
        case 'k':
          AppendMetaKey(request.key, request.base64_key);
          break;
        default:
          break;
      }
    }
    if (request.return_value) absl::StrAppend(&line_, "\r\n", digits);
    line_ += "\r\n";
    out->Append(line_);
    return;
  }
  switch (result) {
    case cache::DeltaResult::kNonNumeric:
      out->Append(
          "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
      return;
    case cache::DeltaResult::kOutOfMemory:
      out->Append("SERVER_ERROR out of memory\r\n");
      return;
    case cache::DeltaResult::kExists:
      line_ = "EX";
      break;
    default:
      line_ = not_stored ? "NS" : "NF";
      break;
  }
  for (size_t i = 0; i < request.flag_count; ++i) {
    const MetaFlag& f = request.flags[i];
    if (f.flag == 'O') {
      absl::StrAppend(&line_, " O", f.token);
    } else if (f.flag == 'k') {
      AppendMetaKey(request.key, request.base64_key);
    }
  }
  line_ += "\r\n";
  out->Append(line_);
}

void CacheOrca::MetaDebug(const MetaRequest& request, int64_t now,
                          OutputChain* out) {
  cache::ItemMeta meta;
  cache::ItemRef item = handler_.Peek(request.key, now, &meta);
  if (!item) {
    out->Append("EN\r\n");
    return;
  }
  line_ = "ME ";
  if (item.key_binary()) {
    line_ += absl::Base64Escape(item.key());
  } else {
    line_.append(item.key().data(), item.key().size());
  }
  // memcached prints exp as now - expiry (so a live item shows a negative
  // number), and has slab classes where we have none: cls is always 1.
  const int64_t expiry = item.expires_at();
  absl::StrAppend(&line_, " exp=", expiry == 0 ? -1 : now - expiry,
                  " la=", now - meta.last_access, " cas=", item.cas(),
                  " fetch=", meta.fetched ? "yes" : "no",
                  " cls=1 size=", item.alloc_size(), "\r\n");
  out->Append(line_);
}

}  // namespace memshard
