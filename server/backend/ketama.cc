#include "server/backend/ketama.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "glog/logging.h"

namespace memshard {
namespace backend {
namespace {

// One digest context per thread, reused: EVP_Digest() would allocate and
// free a context on every key.
class Md5Context {
 public:
  Md5Context()
      : md_(EVP_MD_fetch(nullptr, "MD5", nullptr)), ctx_(EVP_MD_CTX_new()) {
    CHECK(md_ != nullptr && ctx_ != nullptr) << "OpenSSL has no MD5";
  }
  ~Md5Context() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Md5Context(const Md5Context&) = delete;
  Md5Context& operator=(const Md5Context&) = delete;

  void Digest(absl::string_view data, uint8_t digest[16]) {
    unsigned int size = 0;
    CHECK(EVP_DigestInit_ex2(ctx_, md_, nullptr) == 1 &&
          EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1 &&
          EVP_DigestFinal_ex(ctx_, digest, &size) == 1 && size == 16);
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

uint32_t Word(const uint8_t digest[16], int i) {
  return static_cast<uint32_t>(digest[4 * i]) |
         static_cast<uint32_t>(digest[4 * i + 1]) << 8 |
         static_cast<uint32_t>(digest[4 * i + 2]) << 16 |
         static_cast<uint32_t>(digest[4 * i + 3]) << 24;
}

}  // namespace

void Md5(absl::string_view data, uint8_t digest[16]) {
  thread_local Md5Context context;
  context.Digest(data, digest);
}

uint32_t KetamaRing::Hash(absl::string_view key) {
  uint8_t digest[16];
  Md5(key, digest);
  return Word(digest, 0);
}

KetamaRing::KetamaRing(absl::Span<const KetamaNode> nodes,
                       const std::vector<bool>& live) {
  auto is_live = [&](size_t i) { return live.empty() || live[i]; };
  uint64_t total_weight = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!is_live(i)) continue;
    ++live_nodes_;
    total_weight += nodes[i].weight;
  }
  if (live_nodes_ == 0 || total_weight == 0) {
    live_nodes_ = 0;
    return;
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!is_live(i)) continue;
    const KetamaNode& node = nodes[i];
    // Float, not double: libmemcached computes in float, and the rounding
    // decides whether a server gets e.g. 156 or 160 points.
    float pct =
        static_cast<float>(node.weight) / static_cast<float>(total_weight);
    float scaled = pct * static_cast<float>(kPointsPerServer) / 4.0f *
                       static_cast<float>(live_nodes_) +
                   0.0000000001f;
    uint32_t server_points = static_cast<uint32_t>(std::floor(scaled)) * 4;
    char name[512];
    for (uint32_t j = 0; j < server_points / 4; ++j) {
      int n = node.port == kDefaultPort
                  ? snprintf(name, sizeof(name), "%s-%u", node.host.c_str(), j)
                  : snprintf(name, sizeof(name), "%s:%u-%u", node.host.c_str(),
                             static_cast<unsigned>(node.port), j);
      CHECK(n > 0 && static_cast<size_t>(n) < sizeof(name))
          << "backend name too long: " << node.host;
      uint8_t digest[16];
      Md5(absl::string_view(name, n), digest);
      for (int w = 0; w < 4; ++w) {
        points_.push_back(Point{Word(digest, w), static_cast<uint32_t>(i)});
      }
    }
  }
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.value != b.value ? a.value < b.value : a.node < b.node;
  });
}

int KetamaRing::NodeForHash(uint32_t hash) const {
  if (points_.empty()) return -1;
  auto it =
      std::lower_bound(points_.begin(), points_.end(), hash,
                       [](const Point& p, uint32_t h) { return p.value < h; });
  if (it == points_.end()) it = points_.begin();
  return static_cast<int>(it->node);
}

}  // namespace backend
}  // namespace memshard
