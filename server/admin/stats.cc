#include "server/admin/stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/buffer_pool.h"
#include "server/admin/connection_directory.h"
#include "server/admin/prefix_stats.h"
#include "server/backend/backend_stats.h"
#include "server/connection_table.h"

namespace memshard {
namespace {

class LineWriter {
 public:
  template <typename T>
  void Add(absl::string_view name, const T& value) {
    lines_.push_back(StatLine{std::string(name), absl::StrCat(value)});
  }
  std::vector<StatLine> Finish() { return std::move(lines_); }

 private:
  std::vector<StatLine> lines_;
};

std::string Seconds(const timeval& tv) {
  return absl::StrFormat("%d.%06d", tv.tv_sec, tv.tv_usec);
}

double SecondsValue(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

std::string Micros(int64_t nanos) {
  return absl::StrFormat("%.3f", static_cast<double>(nanos) / 1000.0);
}

int Log2Floor(uint64_t v) { return v == 0 ? 0 : 63 - __builtin_clzll(v); }

// The raw (since start) value of a STORE entry.
uint64_t StoreValue(Stat stat, const cache::StoreStats& s) {
  switch (stat) {
    case Stat::get_expired:
      return s.get_expired;
    case Stat::get_flushed:
      return s.get_flushed;
    case Stat::limit_maxbytes:
      return s.limit_maxbytes;
    case Stat::hash_power_level:
      return static_cast<uint64_t>(Log2Floor(s.hash_bytes / sizeof(uint32_t)));
    case Stat::hash_bytes:
      return s.hash_bytes;
    case Stat::bytes:
      return s.bytes;
    case Stat::curr_items:
      return s.curr_items;
    case Stat::total_items:
      return s.total_items;
    case Stat::expired_unfetched:
      return s.expired_unfetched;
    case Stat::evicted_unfetched:
      return s.evicted_unfetched;
    case Stat::evicted_active:
      return s.evicted_active;
    case Stat::evictions:
      return s.evictions;
    case Stat::reclaimed:
      return s.reclaimed;
    case Stat::crawler_reclaimed:
      return s.crawler_reclaimed;
    case Stat::slabs_moved:
      return s.slabs_moved;
    case Stat::direct_reclaims:
      // Every eviction and every reclaim at the LRU tail happens inline, in
      // the storing worker.
      return s.evictions + s.reclaimed;
    case Stat::total_malloced:
      return s.bytes + s.hash_bytes;
    default:
      return 0;
  }
}

void SetInt(StatValue& v, int64_t value) {
  v.text = absl::StrCat(value);
  v.number = static_cast<double>(value);
  v.numeric = true;
}

void SetUint(StatValue& v, uint64_t value) {
  v.text = absl::StrCat(value);
  v.number = static_cast<double>(value);
  v.numeric = true;
}

void SetText(StatValue& v, absl::string_view text) {
  v.text = std::string(text);
  v.numeric = false;
}

StatValue& At(StatValues& values, Stat stat) {
  return values[static_cast<size_t>(stat)];
}

std::vector<StatLine> GeneralStats(const ServerContext& context) {
  StatValues values = ComputeStatValues(context);
  std::vector<StatLine> lines;
  lines.reserve(kNumStats);
  for (size_t i = 0; i < kNumStats; ++i) {
    lines.push_back(
        StatLine{std::string(GetStatInfo(static_cast<Stat>(i)).name),
                 std::move(values[i].text)});
  }
  return lines;
}

std::vector<StatLine> SettingsStats(const ServerContext& context) {
  const ServerOptions& o = context.options;
  LineWriter w;
  // memcached 1.6's names and order where they apply; no value may hold a
  // space (memcached_exporter splits lines on spaces).
  w.Add("maxbytes", context.store->GetStats().limit_maxbytes);
  w.Add("maxconns", o.max_connections);
  w.Add("tcpport", o.port);
  w.Add("udpport", 0);
  w.Add("inter", o.listen.empty() ? "NULL" : absl::StrJoin(o.listen, ","));
  w.Add("verbosity", 0);
  w.Add("oldest", 0);
  w.Add("evictions", "on");
  w.Add("domain_socket", o.unix_socket.empty() ? "NULL" : o.unix_socket);
  w.Add("umask", absl::StrFormat("%o", o.unix_socket_mode));
  w.Add("shutdown_command", "no");
  w.Add("num_threads", context.workers);
  w.Add("stat_key_prefix", std::string(1, PrefixStats::kDelimiter));
  w.Add("detail_enabled", context.prefix_stats.enabled() ? "yes" : "no");
  w.Add("reqs_per_event", ConnectionTable::kRequestBudget);
  w.Add("cas_enabled", "yes");
  w.Add("tcp_backlog", o.backlog);
  w.Add("binding_protocol", "auto-negotiate");
  w.Add("auth_enabled_sasl", "no");
  w.Add("auth_enabled_ascii", "no");
  w.Add("item_size_max", o.max_item_size);
  w.Add("maxconns_fast", "yes");
  w.Add("hashpower_init", 0);
  w.Add("slab_reassign", "no");
  w.Add("slab_automove", 0);
  w.Add("lru_crawler", "no");
  w.Add("lru_maintainer_thread", "no");
  w.Add("lru_segmented", "no");
  w.Add("hash_algorithm", "absl");
  w.Add("flush_enabled", "yes");
  w.Add("dump_enabled", "no");
  w.Add("temp_lru", "no");
  w.Add("idle_timeout", absl::ToInt64Seconds(o.idle_timeout));
  w.Add("track_sizes", "no");
  w.Add("ssl_enabled", "no");
  // memshard's own.
  w.Add("workers", context.workers);
  w.Add("pin_workers", o.pin_workers ? "yes" : "no");
  w.Add("stripes", context.store->stripe_count());
  w.Add("buffer_size", BufferPool::kDefaultBufferSize);
  w.Add("admin_port", o.admin_port);
  return w.Finish();
}

// memcached's `stats slabs` from the arena's classes (ids from 1, smallest
// chunks first), only those holding pages. memcached's per-class command
// counters (get_hits, cmd_set, ...) are not kept per class here.
std::vector<StatLine> SlabStats(const ServerContext& context) {
  LineWriter w;
  const std::vector<cache::SlabClassStats> classes =
      context.store->GetSlabStats();
  uint64_t active = 0;
  uint64_t pages = 0;
  for (size_t i = 0; i < classes.size(); ++i) {
    const cache::SlabClassStats& c = classes[i];
    if (c.pages == 0) continue;
    ++active;
    pages += c.pages;
    const std::string id = absl::StrCat(i + 1, ":");
    const uint64_t total = c.pages * c.chunks_per_page;
    w.Add(id + "chunk_size", c.chunk_size);
    w.Add(id + "chunks_per_page", c.chunks_per_page);
    w.Add(id + "total_pages", c.pages);
    w.Add(id + "total_chunks", total);
    w.Add(id + "used_chunks", c.live);
    w.Add(id + "free_chunks", total - c.live);
    // Never handed out yet: memcached's unused tail of its newest page.
    w.Add(id + "free_chunks_end", total - c.carved);
  }
  w.Add("active_slabs", active);
  w.Add("total_malloced", pages * cache::internal::SlabArena::kPageSize);
  return w.Finish();
}

// memcached's `stats items`: how many items each class holds (chunks in
// use: a replaced item still being sent counts until it is). The other
// per-class fields memcached has (age, evicted, ...) come from its per-class
// LRUs; the store's one CLOCK keeps them store-wide (`stats`).
std::vector<StatLine> ItemStats(const ServerContext& context) {
  LineWriter w;
  const std::vector<cache::SlabClassStats> classes =
      context.store->GetSlabStats();
  for (size_t i = 0; i < classes.size(); ++i) {
    if (classes[i].live == 0) continue;
    w.Add(absl::StrCat("items:", i + 1, ":number"), classes[i].live);
  }
  return w.Finish();
}

std::vector<StatLine> WorkerStats(const ServerContext& context) {
  const MetricsRegistry& m = *context.metrics;
  LineWriter w;
  for (size_t i = 0; i < m.workers(); ++i) {
    const std::string prefix = absl::StrCat(i, ":");
    for (size_t s = 0; s < kNumStats; ++s) {
      const StatInfo& info = GetStatInfo(static_cast<Stat>(s));
      if (info.source != StatSource::kWorker) continue;
      if (info.kind == StatKind::kCounter) {
        w.Add(absl::StrCat(prefix, info.name),
              m.Get(i, static_cast<Counter>(info.slot)));
      } else {
        w.Add(absl::StrCat(prefix, info.name),
              m.worker(i).Get(static_cast<Gauge>(info.slot)));
      }
    }
    w.Add(absl::StrCat(prefix, "ops"), m.WorkerOps(i));
    const int64_t buffers = m.worker(i).Get(Gauge::buffers_in_use) +
                            m.worker(i).Get(Gauge::buffers_free);
    w.Add(absl::StrCat(prefix, "buffer_bytes"),
          buffers * static_cast<int64_t>(BufferPool::kDefaultBufferSize));
  }
  return w.Finish();
}

std::vector<StatLine> LatencyStats(const ServerContext& context) {
  LineWriter w;
  for (size_t f = 0; f < kNumLatencyFamilies; ++f) {
    const auto family = static_cast<LatencyFamily>(f);
    const std::string prefix =
        absl::StrCat(LatencyFamilyInfo(family).name, ":");
    std::unique_ptr<LatencyHistogram> h = context.metrics->Latency(family);
    w.Add(absl::StrCat(prefix, "count"), h->count());
    w.Add(absl::StrCat(prefix, "mean_us"),
          Micros(static_cast<int64_t>(h->Mean())));
    w.Add(absl::StrCat(prefix, "p50_us"), Micros(h->Percentile(50)));
    w.Add(absl::StrCat(prefix, "p90_us"), Micros(h->Percentile(90)));
    w.Add(absl::StrCat(prefix, "p99_us"), Micros(h->Percentile(99)));
    w.Add(absl::StrCat(prefix, "p999_us"), Micros(h->Percentile(99.9)));
    w.Add(absl::StrCat(prefix, "max_us"), Micros(h->max()));
  }
  return w.Finish();
}

std::vector<StatLine> ConnectionStats(const ServerContext& context) {
  LineWriter w;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < context.connections.size(); ++i) {
    context.connections[i]->ForEach([&](const ConnectionRecord& r) {
      const std::string prefix = absl::StrCat(r.fd(), ":");
      w.Add(absl::StrCat(prefix, "addr"),
            r.Address(context.options.unix_socket));
      w.Add(absl::StrCat(prefix, "state"), ConnectionStateName(r.state()));
      w.Add(absl::StrCat(prefix, "secs_since_last_cmd"),
            std::max<int64_t>(0, absl::ToInt64Seconds(now - r.last_active())));
      w.Add(absl::StrCat(prefix, "worker"), i);
    });
  }
  return w.Finish();
}

void ResetStats(const ServerContext& context) {
  const cache::StoreStats store = context.store->GetStats();
  context.metrics->Reset([&](Stat stat) { return StoreValue(stat, store); });
  context.prefix_stats.Clear();
}

}  // namespace

StatValues ComputeStatValues(const ServerContext& context) {
  StatValues values;
  const MetricsRegistry& m = *context.metrics;
  const cache::StoreStats store = context.store->GetStats();
  for (size_t i = 0; i < kNumStats; ++i) {
    const auto stat = static_cast<Stat>(i);
    const StatInfo& info = GetStatInfo(stat);
    StatValue& v = values[i];
    SetInt(v, 0);  // ZERO, and any SERVER entry not computed below
    switch (info.source) {
      case StatSource::kWorker:
        if (info.kind == StatKind::kCounter) {
          SetUint(v, m.Sum(static_cast<Counter>(info.slot)));
        } else {
          SetInt(v, m.Sum(static_cast<Gauge>(info.slot)));
        }
        break;
      case StatSource::kStore: {
        uint64_t raw = StoreValue(stat, store);
        if (IsResettable(info)) raw = m.SinceReset(stat, raw);
        SetUint(v, raw);
        break;
      }
      case StatSource::kServer:
      case StatSource::kZero:
        break;
    }
  }

  const absl::Time now = absl::Now();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  SetInt(At(values, Stat::pid), context.pid);
  SetInt(At(values, Stat::uptime),
         absl::ToInt64Seconds(now - context.start_time));
  SetInt(At(values, Stat::time), absl::ToUnixSeconds(now));
  SetText(At(values, Stat::version), kVersion);
  SetText(At(values, Stat::libevent), "none");
  SetInt(At(values, Stat::pointer_size), sizeof(void*) * 8);
  StatValue& user = At(values, Stat::rusage_user);
  user.text = Seconds(usage.ru_utime);
  user.number = SecondsValue(usage.ru_utime);
  StatValue& system = At(values, Stat::rusage_system);
  system.text = Seconds(usage.ru_stime);
  system.number = SecondsValue(usage.ru_stime);
  SetInt(At(values, Stat::max_connections), context.options.max_connections);
  SetInt(At(values, Stat::connection_structures),
         m.Sum(Gauge::curr_connections));
  const int64_t in_use = m.Sum(Gauge::buffers_in_use);
  const int64_t free = m.Sum(Gauge::buffers_free);
  const int64_t size = static_cast<int64_t>(BufferPool::kDefaultBufferSize);
  SetInt(At(values, Stat::read_buf_count), in_use + free);
  SetInt(At(values, Stat::read_buf_bytes), (in_use + free) * size);
  SetInt(At(values, Stat::read_buf_bytes_free), free * size);
  SetInt(At(values, Stat::accepting_conns), 1);
  SetInt(At(values, Stat::threads), context.workers);
  return values;
}

StatsReply CollectStats(const ServerContext& context, absl::string_view group) {
  StatsReply reply;
  if (group.empty()) {
    reply.lines = GeneralStats(context);
  } else if (group == "settings") {
    reply.lines = SettingsStats(context);
  } else if (group == "workers") {
    reply.lines = WorkerStats(context);
  } else if (group == "latency") {
    reply.lines = LatencyStats(context);
  } else if (group == "conns") {
    reply.lines = ConnectionStats(context);
  } else if (group == "reset") {
    ResetStats(context);
    reply.kind = StatsReply::Kind::kReset;
  } else if (group == "slabs") {
    reply.lines = SlabStats(context);
  } else if (group == "items") {
    reply.lines = ItemStats(context);
  } else if (group == "backends") {
    // --mode=proxy|l1l2: per-backend state, traffic and round trips.
    if (context.backend_stats != nullptr) {
      for (auto& [name, value] : backend::BackendStatLines(
               *context.backend_stats, context.options.backend.backends)) {
        reply.lines.push_back(StatLine{std::move(name), std::move(value)});
      }
    }
  } else if (group == "sizes") {
    reply.lines.push_back(StatLine{"sizes_status", "disabled"});
  } else {
    reply.kind = StatsReply::Kind::kUnknown;
  }
  return reply;
}

void WriteStatsDetail(const ServerContext& context, absl::string_view arg,
                      OutputChain* out) {
  PrefixStats& stats = context.prefix_stats;
  if (arg == "on" || arg == "off") {
    stats.set_enabled(arg == "on");
    out->Append("OK\r\n");
  } else if (arg == "dump") {
    out->Append(stats.Dump());
  } else {
    out->Append("CLIENT_ERROR usage: stats detail on|off|dump\r\n");
  }
}

void WriteStats(const ServerContext& context, absl::string_view group,
                OutputChain* out) {
  StatsReply reply = CollectStats(context, group);
  switch (reply.kind) {
    case StatsReply::Kind::kReset:
      out->Append("RESET\r\n");
      return;
    case StatsReply::Kind::kUnknown:
      out->Append("ERROR\r\n");
      return;
    case StatsReply::Kind::kLines:
      break;
  }
  std::string text;
  for (const StatLine& line : reply.lines) {
    absl::StrAppend(&text, "STAT ", line.name, " ", line.value, "\r\n");
  }
  text.append("END\r\n");
  out->Append(text);
}

}  // namespace memshard
