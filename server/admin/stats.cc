#include "server/admin/stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace memshard {
namespace {

class StatWriter {
 public:
  template <typename T>
  void Add(absl::string_view name, const T& value) {
    absl::StrAppend(&text_, "STAT ", name, " ", value, "\r\n");
  }
  std::string Finish() {
    text_.append("END\r\n");
    return std::move(text_);
  }

 private:
  std::string text_;
};

std::string Seconds(const timeval& tv) {
  return absl::StrFormat("%d.%06d", tv.tv_sec, tv.tv_usec);
}

void GeneralStats(const ServerContext& context, StatWriter& w) {
  const MetricsRegistry& m = *context.metrics;
  absl::Time now = absl::Now();
  w.Add("pid", context.pid);
  w.Add("uptime", absl::ToInt64Seconds(now - context.start_time));
  w.Add("time", absl::ToUnixSeconds(now));
  w.Add("version", kVersion);
  w.Add("pointer_size", sizeof(void*) * 8);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  w.Add("rusage_user", Seconds(usage.ru_utime));
  w.Add("rusage_system", Seconds(usage.ru_stime));
  w.Add("max_connections", context.options.max_connections);
  for (size_t g = 0; g < kNumGauges; ++g) {
    w.Add(GaugeInfo(static_cast<Gauge>(g)).name, m.Sum(static_cast<Gauge>(g)));
  }
  for (size_t c = 0; c < kNumCounters; ++c) {
    w.Add(CounterInfo(static_cast<Counter>(c)).name,
          m.Sum(static_cast<Counter>(c)));
  }
  w.Add("threads", context.workers);
  cache::StoreStats store = context.store->GetStats();
  w.Add("limit_maxbytes", store.limit_maxbytes);
  w.Add("bytes", store.bytes);
  w.Add("curr_items", store.curr_items);
  w.Add("total_items", store.total_items);
  w.Add("expired_unfetched", store.expired_unfetched);
  w.Add("evicted_unfetched", store.evicted_unfetched);
  w.Add("evictions", store.evictions);
  w.Add("reclaimed", store.reclaimed);
}

void WorkerStats(const ServerContext& context, StatWriter& w) {
  const MetricsRegistry& m = *context.metrics;
  for (size_t i = 0; i < m.workers(); ++i) {
    const WorkerMetrics& block = m.worker(i);
    for (size_t g = 0; g < kNumGauges; ++g) {
      w.Add(absl::StrCat(i, ":", GaugeInfo(static_cast<Gauge>(g)).name),
            block.Get(static_cast<Gauge>(g)));
    }
    for (size_t c = 0; c < kNumCounters; ++c) {
      w.Add(absl::StrCat(i, ":", CounterInfo(static_cast<Counter>(c)).name),
            block.Get(static_cast<Counter>(c)));
    }
  }
}

void SettingsStats(const ServerContext& context, StatWriter& w) {
  const ServerOptions& o = context.options;
  w.Add("maxbytes", o.memory_limit_mb << 20);
  w.Add("maxconns", o.max_connections);
  w.Add("tcpport", o.port);
  w.Add("num_threads", context.workers);
  w.Add("item_size_max", o.max_item_size);
  w.Add("idle_timeout", absl::ToInt64Seconds(o.idle_timeout));
  w.Add("unix_socket", o.unix_socket.empty() ? "NULL" : o.unix_socket);
  w.Add("stripes", context.store->stripe_count());
}

}  // namespace

void WriteStats(const ServerContext& context, absl::string_view group,
                OutputChain* out) {
  StatWriter w;
  if (group.empty()) {
    GeneralStats(context, w);
  } else if (group == "workers") {
    WorkerStats(context, w);
  } else if (group == "settings") {
    SettingsStats(context, w);
  } else {
    out->Append("ERROR\r\n");
    return;
  }
  out->Append(w.Finish());
}

}  // namespace memshard
