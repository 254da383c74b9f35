#pragma once

// The memcached `stats` command: "STAT <name> <value>\r\n" lines and "END".
// Any thread; reads the per-worker metric blocks and the store's stats, and
// sums them on read.

#include "absl/strings/string_view.h"
#include "server/output_chain.h"
#include "server/server_context.h"

namespace memshard {

// `group` is "" for plain `stats`, or "workers" / "settings". An unknown
// group gets memcached's "ERROR".
void WriteStats(const ServerContext& context, absl::string_view group,
                OutputChain* out);

}  // namespace memshard
