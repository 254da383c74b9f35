#pragma once

// How the embedded cache wants the process's malloc configured, and why.
//
// Items are single malloc'd blocks (item.h), so the store's hard budget
// bounds live bytes, not resident memory: the gap is the allocator's
// fragmentation. Measured with //tools/memcheck (memcheck.cc; 4x overfill of
// a 64 MiB limit, 2 workers): values of mixed sizes stay near 77 MiB with
// any glibc setting (bound: limit x 1.10 + 32 MiB = 102.4 MiB). When value
// sizes shift (small values, then large), glibc's default of one arena per
// worker thread lets space freed in one arena go unused by the others, and
// RSS peaked at 113-146 MiB; with a single arena the same workloads peak at
// 90-98 MiB, at equal throughput (2 workers; contention on the one arena
// at many cores is unmeasured). jemalloc stayed within the bound only
// when purging pages on every free (dirty/muzzy decay 0), which cost 3-4x
// the CPU per set of 10-100 KB values; mimalloc exceeded it. So: glibc
// malloc, one arena. Known limit: at 128 MiB the shifting workload still
// peaks at ~180 MiB (bound 172.8; memcached's slabs: 134) - holes left by
// small items are not reusable by large ones in any malloc we tried.
//
// Thread-safety: thread-safe and idempotent. It only affects threads that
// have not allocated yet, so call it before worker threads start (the
// Store constructor does). A no-op without glibc, and under sanitizers
// (their allocators ignore mallopt).

namespace memshard::cache {

// Limits glibc malloc to one arena (mallopt(M_ARENA_MAX, 1)). Returns
// whether the setting was applied.
bool ConfigureMallocForCache();

}  // namespace memshard::cache
