#pragma once

// Debian's libmemcached (libmemcached-dev) as a test client of one server
// on 127.0.0.1, in text or binary protocol.
//
// Thread-compatible: one Memc per thread, as libmemcached requires.

#include <libmemcached/memcached.h>

#include <memory>

#include "gtest/gtest.h"

namespace memshard {

struct MemcFree {
  void operator()(memcached_st* memc) const { memcached_free(memc); }
};
using Memc = std::unique_ptr<memcached_st, MemcFree>;

enum class MemcProtocol { kText, kBinary };

// A client of 127.0.0.1:`port` with CAS support and 5 s connect and poll
// timeouts; `noreply` sends every command without waiting for its reply.
inline Memc NewMemc(int port, MemcProtocol protocol, bool noreply = false) {
  Memc memc(memcached_create(nullptr));
  EXPECT_EQ(memcached_server_add(memc.get(), "127.0.0.1", port),
            MEMCACHED_SUCCESS);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
                         protocol == MemcProtocol::kBinary ? 1 : 0);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 5000);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 5000);
  if (noreply) {
    memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_NOREPLY, 1);
  }
  return memc;
}

}  // namespace memshard
