#pragma once

// The one table of memshard's per-worker metrics. Every counter and gauge is
// declared here once, with its help text; `stats` and (later) Prometheus
// output are generated from it.
//
// X(name, help): `name` is also the memcached `stats` name.

#define MEMSHARD_COUNTERS(X)                                                \
  X(total_connections, "Connections accepted since start")                  \
  X(rejected_connections, "Connections refused because of max_connections") \
  X(idle_kicks, "Connections closed by the idle timeout")                   \
  X(cmd_get, "Keys requested by retrieval commands")                        \
  X(cmd_set, "Storage commands")                                            \
  X(cmd_delete, "Delete commands")                                          \
  X(cmd_touch, "Touch and get-and-touch keys")                              \
  X(cmd_flush, "flush_all commands")                                        \
  X(get_hits, "Keys found by retrieval commands")                           \
  X(get_misses, "Keys not found by retrieval commands")                     \
  X(get_expired, "Keys found expired by retrieval commands")                \
  X(delete_hits, "Deletes that removed an item")                            \
  X(delete_misses, "Deletes of keys not present")                           \
  X(incr_hits, "incr on a present key")                                     \
  X(incr_misses, "incr on a missing key")                                   \
  X(decr_hits, "decr on a present key")                                     \
  X(decr_misses, "decr on a missing key")                                   \
  X(cas_hits, "cas that stored")                                            \
  X(cas_badval, "cas refused because the item changed")                     \
  X(cas_misses, "cas on a missing key")                                     \
  X(touch_hits, "Touches of a present key")                                 \
  X(touch_misses, "Touches of a missing key")                               \
  X(bytes_read, "Bytes read from clients")                                  \
  X(bytes_written, "Bytes written to clients")                              \
  X(protocol_errors,                                                        \
    "Requests answered with ERROR, CLIENT_ERROR or SERVER_ERROR")

#define MEMSHARD_GAUGES(X) X(curr_connections, "Open client connections")
