#pragma once

// What one client thread observed. Each thread writes only its own
// LoadStats; the controller merges them after the threads have been joined.
//
// Thread-safety: thread-compatible (single writer, read after join).

#include <cstdint>

#include "metrics/latency_histogram.h"

namespace memshard {
namespace loadgen {

struct LoadStats {
  // Counted only for replies that complete inside the measured window.
  uint64_t ops = 0;       // requests completed (a multiget counts once)
  uint64_t gets = 0;      // retrieval requests
  uint64_t sets = 0;      // storage requests
  uint64_t get_keys = 0;  // keys asked for by those gets
  uint64_t hits = 0;      // keys returned
  uint64_t misses = 0;    // keys not returned
  LatencyHistogram latency;
  LatencyHistogram get_latency;
  LatencyHistogram set_latency;
  // Open loop: how late requests left compared with their schedule.
  LatencyHistogram send_lag;

  // Counted over the whole run: any of these means something is wrong.
  uint64_t server_errors = 0;     // ERROR, CLIENT_ERROR, SERVER_ERROR
  uint64_t not_stored = 0;        // NOT_STORED, EXISTS, NOT_FOUND to a set
  uint64_t bad_replies = 0;       // wrong key, wrong size, wrong reply kind
  uint64_t protocol_errors = 0;   // unframeable bytes; connection dropped
  uint64_t disconnects = 0;       // server closed a connection mid-run
  uint64_t connect_failures = 0;  // connections that never opened

  uint64_t prefill_stored = 0;
  uint64_t prefill_errors = 0;

  uint64_t load_connections = 0;  // load connections that opened
  uint64_t idle_connections = 0;  // silent connections that opened
  uint64_t idle_closed = 0;       // silent connections the server closed
  uint64_t outstanding = 0;       // requests without a reply at the end

  uint64_t errors() const {
    return server_errors + not_stored + bad_replies + protocol_errors +
           disconnects + connect_failures + prefill_errors;
  }

  void Merge(const LoadStats& other) {
    ops += other.ops;
    gets += other.gets;
    sets += other.sets;
    get_keys += other.get_keys;
    hits += other.hits;
    misses += other.misses;
    latency.Merge(other.latency);
    get_latency.Merge(other.get_latency);
    set_latency.Merge(other.set_latency);
    send_lag.Merge(other.send_lag);
    server_errors += other.server_errors;
    not_stored += other.not_stored;
    bad_replies += other.bad_replies;
    protocol_errors += other.protocol_errors;
    disconnects += other.disconnects;
    connect_failures += other.connect_failures;
    prefill_stored += other.prefill_stored;
    prefill_errors += other.prefill_errors;
    load_connections += other.load_connections;
    idle_connections += other.idle_connections;
    idle_closed += other.idle_closed;
    outstanding += other.outstanding;
  }
};

}  // namespace loadgen
}  // namespace memshard
