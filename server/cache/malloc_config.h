#pragma once

// How the embedded cache wants the process's malloc configured, and why.
//
// Items no longer come from malloc: they live in the store's SlabArena
// (slab_arena.h), whose footprint is capped and drained by page, which is
// what keeps RSS within limit x 1.10 + 32 MiB when value sizes shift
// (tools/soak, 64 MiB limit: peak 87 MiB against 102.4; with items in glibc
// malloc it was 140, with any setting here). malloc still holds the hash
// tables, connection buffers and the rest; one arena keeps those compact.
//
// History, for items in malloc (//tools/memcheck, 4x overfill of a 64 MiB
// limit, 2 workers): glibc's default of one arena per worker thread let
// space freed in one arena go unused by the others (113-146 MiB when sizes
// shifted; 90-98 MiB with one arena); jemalloc stayed within the bound only
// when purging pages on every free, at 3-4x the CPU per set of 10-100 KB
// values; mimalloc exceeded it; M_MMAP_THRESHOLD at 8 KiB still peaked at
// 129 MiB in tools/soak (small items' pages stay pinned by survivors).
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
