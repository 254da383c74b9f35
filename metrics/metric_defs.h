#pragma once

// The one table of memshard's statistics. Every line of plain `stats`, every
// per-worker counter and gauge, and every Prometheus series is generated from
// MEMSHARD_STATS_TABLE below; latency histograms come from
// MEMSHARD_LATENCY_FAMILIES. Nothing else declares a metric.
//
// Entry: F(Y, name, kind, source, prometheus, help)
//   name        the memcached `stats` name; table order is `stats` order
//               (memcached 1.6's order, memshard's own stats last).
//   kind        COUNTER (only goes up; `stats reset` clears WORKER and STORE
//               counters, as memcached clears its own), GAUGE (a level), or
//               INFO (text, or a number that is neither).
//   source      WORKER  a slot in every worker's metrics block, written by
//                       that worker only and summed on read;
//               STORE   read from (or derived from) the embedded store;
//               SERVER  computed by the reader (process, options, sums);
//               ZERO    no meaning for memshard's engine: always 0, kept so
//                       tools written for memcached find every field.
//   prometheus  the series in /metrics (memcached_exporter's name and labels
//               where it has one, else memshard_*), or "" for none. WORKER
//               stats are also exported per worker as memshard_worker_<name>.
//   help        one line for `stats` readers and Prometheus HELP.
//
// The filters below (MEMSHARD_COUNTERS, MEMSHARD_GAUGES) select entries by
// pasting kind and source into a macro name; every kind/source pair in use
// needs its line in each filter.

#define MEMSHARD_STATS_TABLE(F, Y)                                             \
  F(Y, pid, INFO, SERVER, "", "Process id")                                    \
  F(Y, uptime, COUNTER, SERVER, "memcached_uptime_seconds",                    \
    "Seconds since the server started")                                        \
  F(Y, time, GAUGE, SERVER, "memcached_time_seconds",                          \
    "Current unix time according to the server")                               \
  F(Y, version, INFO, SERVER, "memcached_version", "Server version")           \
  F(Y, libevent, INFO, SERVER, "",                                             \
    "Event library: none (each worker runs its own epoll loop)")               \
  F(Y, pointer_size, INFO, SERVER, "", "Pointer size in bits")                 \
  F(Y, rusage_user, COUNTER, SERVER,                                           \
    "memcached_process_user_cpu_seconds_total", "User CPU seconds used")       \
  F(Y, rusage_system, COUNTER, SERVER,                                         \
    "memcached_process_system_cpu_seconds_total", "System CPU seconds used")   \
  F(Y, max_connections, GAUGE, SERVER, "memcached_max_connections",            \
    "Client connections allowed (--max_connections)")                          \
  F(Y, curr_connections, GAUGE, WORKER, "memcached_current_connections",       \
    "Open client connections")                                                 \
  F(Y, total_connections, COUNTER, WORKER, "memcached_connections_total",      \
    "Connections accepted")                                                    \
  F(Y, rejected_connections, COUNTER, WORKER,                                  \
    "memcached_connections_rejected_total",                                    \
    "Connections refused because of --max_connections")                        \
  F(Y, connection_structures, GAUGE, SERVER, "",                               \
    "Connection state objects allocated (one per open connection)")            \
  F(Y, response_obj_oom, COUNTER, ZERO, "",                                    \
    "Always 0: replies go to pooled buffers, never to response objects")       \
  F(Y, response_obj_count, GAUGE, ZERO, "",                                    \
    "Always 0: memshard has no response objects")                              \
  F(Y, response_obj_bytes, GAUGE, ZERO, "",                                    \
    "Always 0: memshard has no response objects")                              \
  F(Y, read_buf_count, GAUGE, SERVER, "memshard_buffers",                      \
    "I/O buffers held by the workers' pools, borrowed or cached")              \
  F(Y, read_buf_bytes, GAUGE, SERVER, "memshard_buffer_bytes",                 \
    "Bytes of I/O buffers held by the workers' pools")                         \
  F(Y, read_buf_bytes_free, GAUGE, SERVER, "memshard_buffer_free_bytes",       \
    "Bytes of cached, unborrowed I/O buffers")                                 \
  F(Y, read_buf_oom, COUNTER, ZERO, "",                                        \
    "Always 0: a pool allocates when its free list is empty")                  \
  F(Y, reserved_fds, GAUGE, ZERO, "",                                          \
    "Always 0: memshard reserves no descriptors")                              \
  F(Y, cmd_get, COUNTER, WORKER, "memshard_cmd_get_total",                     \
    "Keys requested by get and gets")                                          \
  F(Y, cmd_set, COUNTER, WORKER,                                               \
    "memcached_commands_total{command=\"set\",status=\"hit\"}",                \
    "Storage commands (set, add, replace, append, prepend, cas); "             \
    "exported without the cas ones, like memcached_exporter")                  \
  F(Y, cmd_flush, COUNTER, WORKER,                                             \
    "memcached_commands_total{command=\"flush\",status=\"hit\"}",              \
    "flush_all commands")                                                      \
  F(Y, cmd_touch, COUNTER, WORKER, "memshard_cmd_touch_total",                 \
    "Keys touched by touch, gat and gats")                                     \
  F(Y, cmd_meta, COUNTER, WORKER, "memshard_cmd_meta_total",                   \
    "Meta protocol commands")                                                  \
  F(Y, get_hits, COUNTER, WORKER,                                              \
    "memcached_commands_total{command=\"get\",status=\"hit\"}",                \
    "Keys found by get and gets")                                              \
  F(Y, get_misses, COUNTER, WORKER,                                            \
    "memcached_commands_total{command=\"get\",status=\"miss\"}",               \
    "Keys not found by get and gets")                                          \
  F(Y, get_expired, COUNTER, STORE, "memshard_get_expired_total",              \
    "Retrievals that found their key expired")                                 \
  F(Y, get_flushed, COUNTER, STORE, "memshard_get_flushed_total",              \
    "Retrievals that found their key flushed")                                 \
  F(Y, delete_misses, COUNTER, WORKER,                                         \
    "memcached_commands_total{command=\"delete\",status=\"miss\"}",            \
    "Deletes of keys not present")                                             \
  F(Y, delete_hits, COUNTER, WORKER,                                           \
    "memcached_commands_total{command=\"delete\",status=\"hit\"}",             \
    "Deletes that removed an item")                                            \
  F(Y, incr_misses, COUNTER, WORKER,                                           \
    "memcached_commands_total{command=\"incr\",status=\"miss\"}",              \
    "incr on a missing key")                                                   \
  F(Y, incr_hits, COUNTER, WORKER,                                             \
    "memcached_commands_total{command=\"incr\",status=\"hit\"}",               \
    "incr on a present key")                                                   \
  F(Y, decr_misses, COUNTER, WORKER,                                           \
    "memcached_commands_total{command=\"decr\",status=\"miss\"}",              \
    "decr on a missing key")                                                   \
  F(Y, decr_hits, COUNTER, WORKER,                                             \
    "memcached_commands_total{command=\"decr\",status=\"hit\"}",               \
    "decr on a present key")                                                   \
  F(Y, cas_misses, COUNTER, WORKER,                                            \
    "memcached_commands_total{command=\"cas\",status=\"miss\"}",               \
    "cas on a missing key")                                                    \
  F(Y, cas_hits, COUNTER, WORKER,                                              \
    "memcached_commands_total{command=\"cas\",status=\"hit\"}",                \
    "cas that stored")                                                         \
  F(Y, cas_badval, COUNTER, WORKER,                                            \
    "memcached_commands_total{command=\"cas\",status=\"badval\"}",             \
    "cas refused because the item changed")                                    \
  F(Y, touch_hits, COUNTER, WORKER,                                            \
    "memcached_commands_total{command=\"touch\",status=\"hit\"}",              \
    "Keys touched (touch, gat, gats) that were present")                       \
  F(Y, touch_misses, COUNTER, WORKER,                                          \
    "memcached_commands_total{command=\"touch\",status=\"miss\"}",             \
    "Keys touched (touch, gat, gats) that were missing")                       \
  F(Y, store_too_large, COUNTER, WORKER, "memcached_item_too_large_total",     \
    "Stores refused because the item exceeds --max_item_size")                 \
  F(Y, store_no_memory, COUNTER, WORKER, "memcached_item_no_memory_total",     \
    "Stores refused for lack of memory")                                       \
  F(Y, auth_cmds, COUNTER, WORKER, "memshard_auth_commands_total",             \
    "Authentication attempts (SASL auth/step, ascii auth sets)")               \
  F(Y, auth_errors, COUNTER, WORKER, "memshard_auth_errors_total",             \
    "Failed authentication attempts")                                          \
  F(Y, idle_kicks, COUNTER, WORKER, "memshard_idle_kicks_total",               \
    "Connections closed by --idle_timeout")                                    \
  F(Y, bytes_read, COUNTER, WORKER, "memcached_read_bytes_total",              \
    "Bytes read from clients")                                                 \
  F(Y, bytes_written, COUNTER, WORKER, "memcached_written_bytes_total",        \
    "Bytes written to clients")                                                \
  F(Y, limit_maxbytes, GAUGE, STORE, "memcached_limit_bytes",                  \
    "Memory budget of the cache in bytes")                                     \
  F(Y, accepting_conns, GAUGE, SERVER, "memcached_accepting_connections",      \
    "1: memshard keeps accepting (it refuses connections past the limit)")     \
  F(Y, listen_disabled_num, COUNTER, WORKER,                                   \
    "memcached_connections_listener_disabled_total",                           \
    "Times a listener paused because the process ran out of descriptors")      \
  F(Y, time_in_listen_disabled_us, COUNTER, ZERO, "",                          \
    "Always 0: not measured")                                                  \
  F(Y, threads, GAUGE, SERVER, "memshard_workers", "Worker threads")           \
  F(Y, conn_yields, COUNTER, WORKER, "memcached_connections_yielded_total",    \
    "Times a connection yielded after its per-turn request budget")            \
  F(Y, hash_power_level, GAUGE, STORE, "",                                     \
    "log2 of the hash buckets of all stripes together")                        \
  F(Y, hash_bytes, GAUGE, STORE, "memshard_hash_bytes",                        \
    "Bytes of the hash bucket table in use")                                   \
  F(Y, hash_is_expanding, GAUGE, ZERO, "",                                     \
    "Always 0: each stripe grows its own table under its own lock")            \
  F(Y, slab_reassign_rescues, COUNTER, ZERO, "", "Always 0: no slabs")         \
  F(Y, slab_reassign_chunk_rescues, COUNTER, ZERO, "", "Always 0: no slabs")   \
  F(Y, slab_reassign_evictions_nomem, COUNTER, ZERO, "", "Always 0: no slabs") \
  F(Y, slab_reassign_inline_reclaim, COUNTER, ZERO, "", "Always 0: no slabs")  \
  F(Y, slab_reassign_busy_items, COUNTER, ZERO, "", "Always 0: no slabs")      \
  F(Y, slab_reassign_busy_deletes, COUNTER, ZERO, "", "Always 0: no slabs")    \
  F(Y, slab_reassign_running, GAUGE, ZERO, "", "Always 0: no slabs")           \
  F(Y, slabs_moved, COUNTER, STORE, "memshard_slabs_moved_total",              \
    "Arena pages drained to make room when value sizes shift, their items "    \
    "evicted (memcached's slab page moves)")                                   \
  F(Y, lru_crawler_running, GAUGE, ZERO, "",                                   \
    "Always 0: workers sweep expired items a few at a time, no crawler")       \
  F(Y, lru_crawler_starts, COUNTER, ZERO,                                      \
    "memcached_lru_crawler_starts_total", "Always 0: no LRU crawler")          \
  F(Y, lru_maintainer_juggles, COUNTER, ZERO, "",                              \
    "Always 0: no LRU maintainer thread")                                      \
  F(Y, malloc_fails, COUNTER, ZERO, "", "Always 0: allocation failure aborts") \
  F(Y, log_worker_dropped, COUNTER, ZERO, "", "Always 0: no log watchers")     \
  F(Y, log_worker_written, COUNTER, ZERO, "", "Always 0: no log watchers")     \
  F(Y, log_watcher_skipped, COUNTER, ZERO, "", "Always 0: no log watchers")    \
  F(Y, log_watcher_sent, COUNTER, ZERO, "", "Always 0: no log watchers")       \
  F(Y, log_watchers, GAUGE, ZERO, "", "Always 0: no log watchers")             \
  F(Y, unexpected_napi_ids, COUNTER, ZERO, "", "Always 0: no NAPI ids")        \
  F(Y, round_robin_fallback, COUNTER, ZERO, "", "Always 0: no NAPI ids")       \
  F(Y, bytes, GAUGE, STORE, "memcached_current_bytes",                         \
    "Bytes accounted to stored items")                                         \
  F(Y, curr_items, GAUGE, STORE, "memcached_current_items", "Items stored")    \
  F(Y, total_items, COUNTER, STORE, "memcached_items_total",                   \
    "Items ever stored (every set, append, incr, ... links a new item)")       \
  F(Y, slab_global_page_pool, GAUGE, ZERO, "", "Always 0: no slabs")           \
  F(Y, expired_unfetched, COUNTER, STORE,                                      \
    "memshard_items_expired_unfetched_total",                                  \
    "Expired items reclaimed that were never read")                            \
  F(Y, evicted_unfetched, COUNTER, STORE,                                      \
    "memshard_items_evicted_unfetched_total",                                  \
    "Live items evicted that were never read")                                 \
  F(Y, evicted_active, COUNTER, STORE, "memshard_items_evicted_active_total",  \
    "Live items evicted although used since the CLOCK hand last passed")       \
  F(Y, evictions, COUNTER, STORE, "memcached_items_evicted_total",             \
    "Live items evicted to make room")                                         \
  F(Y, reclaimed, COUNTER, STORE, "memcached_items_reclaimed_total",           \
    "Dead items reclaimed to make room")                                       \
  F(Y, crawler_reclaimed, COUNTER, STORE,                                      \
    "memcached_lru_crawler_reclaimed_total",                                   \
    "Dead items reclaimed by the workers' expiry sweep")                       \
  F(Y, crawler_items_checked, COUNTER, ZERO,                                   \
    "memcached_lru_crawler_items_checked_total", "Always 0: not counted")      \
  F(Y, lrutail_reflocked, COUNTER, ZERO, "", "Always 0: no slab LRU tails")    \
  F(Y, moves_to_cold, COUNTER, ZERO,                                           \
    "memcached_lru_crawler_moves_to_cold_total",                               \
    "Always 0: one LRU per stripe, no hot/warm/cold segments")                 \
  F(Y, moves_to_warm, COUNTER, ZERO,                                           \
    "memcached_lru_crawler_moves_to_warm_total",                               \
    "Always 0: one LRU per stripe, no hot/warm/cold segments")                 \
  F(Y, moves_within_lru, COUNTER, ZERO,                                        \
    "memcached_lru_crawler_moves_within_lru_total",                            \
    "Always 0: one LRU per stripe, no hot/warm/cold segments")                 \
  F(Y, direct_reclaims, COUNTER, STORE, "memcached_direct_reclaims_total",     \
    "Evictions and reclaims done inline by a store (all of them)")             \
  F(Y, lru_bumps_dropped, COUNTER, ZERO, "", "Always 0: bumps are inline")     \
  F(Y, total_malloced, GAUGE, STORE, "memcached_malloced_bytes",               \
    "Bytes the cache holds: items plus hash tables")                           \
  F(Y, cmd_delete, COUNTER, WORKER, "memshard_cmd_delete_total",               \
    "delete commands")                                                         \
  F(Y, protocol_errors, COUNTER, WORKER, "memshard_protocol_errors_total",     \
    "Requests answered with ERROR, CLIENT_ERROR or SERVER_ERROR")              \
  F(Y, buffers_in_use, GAUGE, WORKER, "",                                      \
    "I/O buffers borrowed by connections")                                     \
  F(Y, buffers_free, GAUGE, WORKER, "",                                        \
    "I/O buffers cached on the pools' free lists")                             \
  F(Y, buffers_allocated, COUNTER, WORKER, "",                                 \
    "I/O buffers ever allocated by the pools")                                 \
  F(Y, buffers_trimmed, COUNTER, WORKER, "",                                   \
    "I/O buffers freed by epoch trimming")                                     \
  F(Y, epochs, COUNTER, WORKER, "", "Event-loop iterations")

// Every entry: Y(name, kind, source, prometheus, help).
#define MEMSHARD_STAT_ALL(Y, name, kind, source, prometheus, help) \
  Y(name, kind, source, prometheus, help)
#define MEMSHARD_STATS(Y) MEMSHARD_STATS_TABLE(MEMSHARD_STAT_ALL, Y)

// Per-worker counters (kind COUNTER, source WORKER): Y(name, help).
#define MEMSHARD_COUNTERS(Y) MEMSHARD_STATS_TABLE(MEMSHARD_STAT_PICK_COUNTER, Y)
#define MEMSHARD_STAT_PICK_COUNTER(Y, name, kind, source, prometheus, help) \
  MEMSHARD_STAT_PICK_COUNTER_##kind##_##source(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_COUNTER_WORKER(Y, name, help) Y(name, help)
#define MEMSHARD_STAT_PICK_COUNTER_COUNTER_STORE(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_COUNTER_SERVER(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_COUNTER_ZERO(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_GAUGE_WORKER(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_GAUGE_STORE(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_GAUGE_SERVER(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_GAUGE_ZERO(Y, name, help)
#define MEMSHARD_STAT_PICK_COUNTER_INFO_SERVER(Y, name, help)

// Per-worker gauges (kind GAUGE, source WORKER): Y(name, help).
#define MEMSHARD_GAUGES(Y) MEMSHARD_STATS_TABLE(MEMSHARD_STAT_PICK_GAUGE, Y)
#define MEMSHARD_STAT_PICK_GAUGE(Y, name, kind, source, prometheus, help) \
  MEMSHARD_STAT_PICK_GAUGE_##kind##_##source(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_COUNTER_WORKER(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_COUNTER_STORE(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_COUNTER_SERVER(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_COUNTER_ZERO(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_GAUGE_WORKER(Y, name, help) Y(name, help)
#define MEMSHARD_STAT_PICK_GAUGE_GAUGE_STORE(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_GAUGE_SERVER(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_GAUGE_ZERO(Y, name, help)
#define MEMSHARD_STAT_PICK_GAUGE_INFO_SERVER(Y, name, help)

// Request latency histograms, one per worker per family: X(id, name, help).
// Prometheus: memshard_request_duration_seconds{family="<name>"}.
#define MEMSHARD_LATENCY_FAMILIES(X)                        \
  X(kGet, "get", "get, gets")                               \
  X(kSet, "set", "set, add, replace, append, prepend, cas") \
  X(kDelete, "delete", "delete")                            \
  X(kIncrDecr, "incr_decr", "incr, decr")                   \
  X(kTouch, "touch", "touch, gat, gats")                    \
  X(kMeta, "meta", "Meta protocol commands")                \
  X(kOther, "other",                                        \
    "Everything else: stats, version, flush_all, verbosity, ...")
