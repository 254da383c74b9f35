#include "tools/loadgen/options.h"

#include "absl/strings/str_cat.h"

namespace memshard {
namespace loadgen {

absl::Status ValidateOptions(const LoadgenOptions& o) {
  auto bad = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (o.unix_socket.empty() && (o.port <= 0 || o.port > 65535)) {
    return bad("--port must be in 1..65535 (or give --unix_socket)");
  }
  if (o.duration_s < 0 || o.warmup_s < 0) {
    return bad("--duration and --warmup must be >= 0");
  }
  if (o.connections < 0 || o.hold_idle < 0) {
    return bad("--connections and --hold_idle must be >= 0");
  }
  if (o.connections + o.hold_idle == 0) {
    return bad("nothing to do: --connections and --hold_idle are both 0");
  }
  if (o.threads < 1 || o.threads > 256) return bad("--threads must be 1..256");
  if (o.pipeline < 1 || o.pipeline > 4096) {
    return bad("--pipeline must be 1..4096");
  }
  if (o.multiget < 1 || o.multiget > 1024) {
    return bad("--multiget must be 1..1024");
  }
  if (o.rate < 0) return bad("--rate must be >= 0");
  if (o.rate > 0 && o.pipeline > 1) {
    return bad(
        "--rate (open loop) sends each request at its scheduled time; "
        "--pipeline applies to the closed loop only");
  }
  if (o.rate > 0 && o.connections == 0 && o.duration_s > 0) {
    return bad("--rate needs --connections > 0");
  }
  if (o.keys < 1 || o.keys > uint64_t{0xffffffff}) {
    return bad("--keys must be 1..4294967295");
  }
  if (o.key_size < 2 || static_cast<size_t>(o.key_size) > kMaxKeySize) {
    return bad("--key_size must be 2..", kMaxKeySize);
  }
  if (static_cast<size_t>(o.key_size) < MinKeySize(o.keys)) {
    return bad("--key_size=", o.key_size, " cannot name ", o.keys,
               " keys; need at least ", MinKeySize(o.keys));
  }
  if (o.value_size.max > (1u << 20)) return bad("--value_size above 1 MiB");
  if (o.key_distribution == KeyDistribution::kZipf && o.zipf_s <= 0) {
    return bad("--zipf_s must be > 0");
  }
  if (o.prefill && o.connections == 0) {
    return bad("--prefill needs --connections > 0");
  }
  if (o.prefill_pipeline < 1) return bad("--prefill_pipeline must be >= 1");
  if (o.max_connects_in_flight < 1) {
    return bad("--max_connects_in_flight must be >= 1");
  }
  return absl::OkStatus();
}

}  // namespace loadgen
}  // namespace memshard
