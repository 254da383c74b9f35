#pragma once

// The admin HTTP endpoint (--admin_port): GET /metrics in the Prometheus
// text format 0.0.4, GET /healthz, 404 for any other path (405 for methods
// other than GET and HEAD). Served by an AdminHttpServer on its own thread,
// bound to 127.0.0.1 only.
//
// /metrics carries memcached_exporter's names and labels for what `stats`
// reports (memcached_commands_total{command,status},
// memcached_current_connections, memcached_items_evicted_total, ...; the
// table in metrics/metric_defs.h says which), memshard_worker_* series with
// a worker="<i>" label for every per-worker counter and gauge, and the
// memshard_request_duration_seconds{family} latency histograms, merged over
// the workers. A series' TYPE is counter if its name ends in _total and
// gauge otherwise, which is what promtool's lint asks for.
//
// Thread-safety: RenderPrometheus and HandleAdminRequest may run on any
// thread (they only read; see stats.h). Bind/Start from the controlling
// thread.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/admin/http_server.h"
#include "server/server_context.h"
#include "server/server_options.h"

namespace memshard {

std::string RenderPrometheus(const ServerContext& context);

AdminHttpServer::Response HandleAdminRequest(const ServerContext& context,
                                             absl::string_view method,
                                             absl::string_view path);

// Binds 127.0.0.1:--admin_port (-1: a port the kernel picks), or returns
// null when --admin_port is 0. Fails (port in use, ...) before anything is
// served, so the server can refuse to start.
absl::StatusOr<std::unique_ptr<AdminHttpServer>> BindAdminEndpoint(
    const ServerOptions& options);

// Starts serving `context` and writes --admin_port_file (if set) once the
// endpoint accepts connections. `context` must outlive `server`'s thread.
absl::Status StartAdminEndpoint(AdminHttpServer* server,
                                const ServerContext* context);

}  // namespace memshard
