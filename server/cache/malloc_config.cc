#include "server/cache/malloc_config.h"

#include <cstddef>  // defines __GLIBC__ with glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace memshard::cache {

bool ConfigureMallocForCache() {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
  // mallopt returns 1 on success. Repeating it is harmless.
  static const bool applied = mallopt(M_ARENA_MAX, 1) == 1;
  return applied;
#else
  return false;
#endif
}

}  // namespace memshard::cache
