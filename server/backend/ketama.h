#pragma once

// KetamaRing: libmemcached's weighted ketama continuum (MD5), bit for bit, so
// memshard and a fleet's libmemcached clients agree on where a key lives.
//
// Thread-safety: immutable once built; any thread may call the const methods.
// Each worker builds its own ring (ejection is a per-worker decision).
//
// The continuum, as libmemcached's update_continuum() builds it with
// MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (or any weight > 1):
//   - every live server gets floor(weight / total_live_weight * 40 *
//     live_servers) * 4 points (float arithmetic, as in libmemcached; 160
//     points at equal weights);
//   - the points of server i come from MD5("host:port-j") (or "host-j" when
//     the port is 11211), j = 0, 1, ..., each digest giving four points, its
//     little-endian 32-bit words;
//   - points are sorted by (value, server index).
// A key hashes to the first 4 bytes of MD5(key), little-endian, and belongs to
// the first point >= that hash (wrapping to the first point). With exactly one
// configured server libmemcached skips hashing; the answer is the same.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace memshard {
namespace backend {

struct KetamaNode {
  // As configured: hostname, IP literal, or unix socket path. libmemcached
  // hashes the string it was given, never a resolved address.
  std::string host;
  uint16_t port = 0;  // 0 for unix sockets
  uint32_t weight = 1;
};

class KetamaRing {
 public:
  static constexpr uint32_t kPointsPerServer = 160;
  static constexpr uint16_t kDefaultPort = 11211;

  // An empty ring: NodeFor() returns -1.
  KetamaRing() = default;

  // `live[i]` says whether nodes[i] takes part; an empty `live` means all
  // do. Server indices in the ring are indices into `nodes`.
  KetamaRing(absl::Span<const KetamaNode> nodes,
             const std::vector<bool>& live = {});

  // The index (into the `nodes` the ring was built from) of the server that
  // owns `key`; -1 if no server is live.
  int NodeFor(absl::string_view key) const { return NodeForHash(Hash(key)); }
  int NodeForHash(uint32_t hash) const;

  // libmemcached's MD5 key hash: the first digest word, little-endian.
  static uint32_t Hash(absl::string_view key);

  size_t points() const { return points_.size(); }
  int live_nodes() const { return live_nodes_; }

 private:
  struct Point {
    uint32_t value;
    uint32_t node;
  };
  std::vector<Point> points_;
  int live_nodes_ = 0;
};

// MD5 of `data` into `digest` (OpenSSL's libcrypto). Any thread.
void Md5(absl::string_view data, uint8_t digest[16]);

}  // namespace backend
}  // namespace memshard
