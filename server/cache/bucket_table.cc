#include "server/cache/bucket_table.h"

#include <sys/mman.h>

#include "glog/logging.h"

namespace memshard::cache::internal {
namespace {

int Log2(uint32_t power_of_two) {
  int bits = 0;
  while ((uint32_t{1} << bits) < power_of_two) ++bits;
  return bits;
}

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

BucketTable::BucketTable(uint32_t stripes, size_t reserved_buckets)
    : stripes_(stripes), stripe_bits_(Log2(stripes)) {
  CHECK_GT(stripes, 0u);
  CHECK_EQ(stripes & (stripes - 1), 0u) << "stripes must be a power of two";
  size_t wanted = kInitialBuckets;
  while (wanted * 2 * stripes <= reserved_buckets) wanted *= 2;
  // Address space only (MAP_NORESERVE): pages are touched as stripes grow.
  // If a large reservation is refused (an address-space limit), less.
  size_t per_stripe = wanted;
  for (;;) {
    reserved_bytes_ = per_stripe * stripes * sizeof(uint32_t);
    void* mapping = mmap(nullptr, reserved_bytes_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping != MAP_FAILED) {
      base_ = static_cast<uint32_t*>(mapping);
      break;
    }
    PCHECK(per_stripe > kInitialBuckets)
        << "cannot reserve " << reserved_bytes_ << " bytes for hash buckets";
    per_stripe /= 2;
  }
  if (per_stripe < wanted) {
    LOG(WARNING) << "hash buckets: only " << reserved_bytes_
                 << " bytes of address space; chains grow longer past "
                 << per_stripe * stripes << " buckets";
  }
  max_per_stripe_ = per_stripe;
  // Small tables stay in 4 KiB pages (an empty store is not 2 MiB).
  if (reserved_bytes_ > kHugePage) {
    madvise(reinterpret_cast<char*>(base_) + kHugePage,
            reserved_bytes_ - kHugePage, MADV_HUGEPAGE);
  }
}

BucketTable::~BucketTable() { munmap(base_, reserved_bytes_); }

void BucketTable::NoteMask(size_t mask) {
  size_t seen = mask_hint_.load(std::memory_order_relaxed);
  while (seen < mask && !mask_hint_.compare_exchange_weak(
                            seen, mask, std::memory_order_relaxed)) {
  }
}

}  // namespace memshard::cache::internal
