// memshard: flags to ServerOptions, logging, signals. Nothing else.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "server/cache/store.h"
#include "server/lifecycle/flagfile_check.h"
#include "server/lifecycle/log_files.h"
#include "server/lifecycle/notifier.h"
#include "server/lifecycle/pid_file.h"
#include "server/lifecycle/privileges.h"
#include "server/lifecycle/supervisor.h"
#include "server/server.h"

DEFINE_string(listen, "127.0.0.1",
              "Comma-separated IPv4/IPv6 addresses to listen on");
DEFINE_int32(port, 11211, "TCP port (0: the kernel picks one)");
DEFINE_string(port_file, "",
              "Write the bound TCP port to this file once listening");
DEFINE_string(unix_socket, "", "Also listen on this unix socket path");
DEFINE_string(unix_socket_mode, "0700",
              "Permission bits of --unix_socket, in octal (like memcached -a)");
DEFINE_int32(workers, 0, "Worker threads (0: one per online CPU)");
DEFINE_bool(pin_workers, true,
            "Pin each worker to its own CPU (when workers <= CPUs)");
DEFINE_int32(max_connections, 4096,
             "Client connections beyond this are refused");
DEFINE_int32(idle_timeout, 0,
             "Close connections idle this many seconds (0: never)");
DEFINE_uint64(memory_limit_mb, 64, "Memory budget of the embedded cache");
DEFINE_bool(expiry_sweep, true,
            "Reclaim expired items in the background (memcached: lru_crawler)");
DEFINE_uint64(max_item_size, 1024 * 1024,
              "Largest value accepted, in bytes (up to 128 MiB)");
DEFINE_int32(backlog, 1024, "listen(2) backlog per socket");
DEFINE_string(auth_file, "",
              "memcached -Y: user:password lines; ascii clients must "
              "authenticate (set <key> 0 0 <n> with \"user pass\") first");
DEFINE_string(sasl_password_file, "",
              "user:password lines for binary-protocol SASL PLAIN");
DEFINE_int32(admin_port, 11299,
             "Admin HTTP port on 127.0.0.1 for /metrics and /healthz "
             "(0: off; -1: the kernel picks one, see --admin_port_file)");
DEFINE_string(admin_port_file, "",
              "Write the bound admin port to this file once it serves");

// Orchestration and backends (see README "Proxy and L1/L2 modes").
DEFINE_string(mode, "cache",
              "cache: the embedded cache only; proxy: every request goes to "
              "--backends; l1l2: the embedded cache as L1 in front of "
              "--backends as L2");
DEFINE_string(backends, "",
              "Backend memcached servers: host:port[:weight] or "
              "/unix/path[:weight], comma-separated; placed with "
              "libmemcached's weighted ketama (MD5)");
DEFINE_int32(backend_connections, 1,
             "Connections per worker per backend (pipelined)");
DEFINE_string(backend_protocol, "meta",
              "meta (memcached >= 1.6, memshard: reports TTLs for L1 fills) "
              "or text (older servers)");
DEFINE_int32(backend_connect_timeout_ms, 500, "Backend connect timeout");
DEFINE_int32(backend_timeout_ms, 1000,
             "Backend request timeout; later requests to that backend fail "
             "and its connection is reset");
DEFINE_string(backend_failure, "error",
              "error: keys on a dead backend get SERVER_ERROR; eject: a "
              "backend failing --backend_failure_limit times in a row leaves "
              "the ring until it answers a probe");
DEFINE_int32(backend_failure_limit, 3,
             "Consecutive failures that eject a backend (--backend_failure="
             "eject)");
DEFINE_int32(backend_retry_ms, 1000,
             "Probe interval of an ejected backend; longest reconnect "
             "backoff");
DEFINE_int32(backend_max_in_flight, 4096,
             "Requests in flight per backend connection; more get an error");
DEFINE_string(l1_fill, "read",
              "l1l2: read (L2 read hits fill L1 with L2's remaining TTL) or "
              "write_only (only writes refresh L1, by replace)");

// Operations (see README "Operating memshard").
DEFINE_double(shutdown_grace, 10,
              "Seconds SIGTERM/SIGINT may spend draining connections before "
              "closing what is left");
DEFINE_string(user, "",
              "Drop root to this user (name or uid) after binding the "
              "sockets");
DEFINE_string(pid_file, "", "Write the process id to this file");
DEFINE_double(status_interval, 5, "Seconds between STATUS= updates to systemd");
DEFINE_double(testonly_stall_on_sigusr2, 0,
              "Tests only: on SIGUSR2, block worker 0 for this many seconds "
              "(0: off)");

namespace {

int Fail(const std::string& message) {
  fprintf(stderr, "memshard: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("memcached-compatible cache server and proxy");
  // gflags would skip unknown names in a flagfile without a word.
  absl::Status flagfiles = memshard::CheckFlagfiles(argc, argv);
  if (!flagfiles.ok()) return Fail(std::string(flagfiles.message()));
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) return Fail(std::string("unexpected argument: ") + argv[1]);
  // stderr (the journal, under systemd) unless --log_dir asks for files.
  // Only a --log_dir given on purpose counts: glog defaults it from the
  // environment ($TEST_TMPDIR, $GOOGLE_LOG_DIR).
  const bool log_dir_given =
      !gflags::GetCommandLineFlagInfoOrDie("log_dir").is_default &&
      !FLAGS_log_dir.empty();
  if (gflags::GetCommandLineFlagInfoOrDie("logtostderr").is_default) {
    FLAGS_logtostderr = !log_dir_given;
  }
  google::InitGoogleLogging(argv[0]);
  if (!FLAGS_logtostderr && log_dir_given) memshard::UseLogDir(FLAGS_log_dir);

  memshard::ServerOptions options;
  options.listen = absl::StrSplit(FLAGS_listen, ',', absl::SkipWhitespace());
  if (FLAGS_port < 0 || FLAGS_port > 65535) return Fail("--port out of range");
  options.port = static_cast<uint16_t>(FLAGS_port);
  options.port_file = FLAGS_port_file;
  options.unix_socket = FLAGS_unix_socket;
  {
    char* end = nullptr;
    unsigned long mode = strtoul(FLAGS_unix_socket_mode.c_str(), &end, 8);
    if (FLAGS_unix_socket_mode.empty() || *end != '\0' || mode > 0777) {
      return Fail(
          "--unix_socket_mode must be octal permission bits, e.g. 0660");
    }
    options.unix_socket_mode = static_cast<uint32_t>(mode);
  }
  if (FLAGS_workers < 0 || FLAGS_workers > 1024) {
    return Fail("--workers must be between 0 and 1024");
  }
  options.workers = FLAGS_workers;
  options.pin_workers = FLAGS_pin_workers;
  if (FLAGS_max_connections < 1) return Fail("--max_connections must be > 0");
  options.max_connections = FLAGS_max_connections;
  if (FLAGS_idle_timeout < 0) return Fail("--idle_timeout must be >= 0");
  options.idle_timeout = absl::Seconds(FLAGS_idle_timeout);
  if (FLAGS_memory_limit_mb < 1) return Fail("--memory_limit_mb must be > 0");
  // Item handles are 32 bits (server/cache/slab_arena.h), which bounds the
  // arena's address range.
  constexpr uint64_t kMaxMemoryLimitMb =
      memshard::cache::Store::kMaxMemoryLimit >> 20;
  if (FLAGS_memory_limit_mb > kMaxMemoryLimitMb) {
    return Fail(
        absl::StrCat("--memory_limit_mb must be at most ", kMaxMemoryLimitMb));
  }
  options.memory_limit_mb = FLAGS_memory_limit_mb;
  options.expiry_sweep = FLAGS_expiry_sweep;
  if (FLAGS_max_item_size < 1024 || FLAGS_max_item_size > (128u << 20)) {
    return Fail("--max_item_size must be between 1 KiB and 128 MiB");
  }
  options.max_item_size = FLAGS_max_item_size;
  options.backlog = FLAGS_backlog;
  options.auth_file = FLAGS_auth_file;
  options.sasl_password_file = FLAGS_sasl_password_file;
  if (FLAGS_admin_port < -1 || FLAGS_admin_port > 65535) {
    return Fail("--admin_port must be between -1 and 65535");
  }
  options.admin_port = FLAGS_admin_port;
  options.admin_port_file = FLAGS_admin_port_file;

  if (FLAGS_mode == "cache") {
    options.mode = memshard::ServerOptions::Mode::kCache;
  } else if (FLAGS_mode == "proxy") {
    options.mode = memshard::ServerOptions::Mode::kProxy;
  } else if (FLAGS_mode == "l1l2") {
    options.mode = memshard::ServerOptions::Mode::kL1L2;
  } else {
    return Fail("--mode must be cache, proxy or l1l2");
  }
  if (FLAGS_l1_fill == "read") {
    options.l1_fill = memshard::ServerOptions::L1Fill::kRead;
  } else if (FLAGS_l1_fill == "write_only") {
    options.l1_fill = memshard::ServerOptions::L1Fill::kWriteOnly;
  } else {
    return Fail("--l1_fill must be read or write_only");
  }
  {
    memshard::backend::BackendOptions& b = options.backend;
    if (!FLAGS_backends.empty()) {
      auto backends = memshard::backend::ParseBackendList(FLAGS_backends);
      if (!backends.ok()) return Fail(std::string(backends.status().message()));
      b.backends = *std::move(backends);
    }
    if (options.mode != memshard::ServerOptions::Mode::kCache &&
        b.backends.empty()) {
      return Fail("--mode=" + FLAGS_mode + " needs --backends");
    }
    if (FLAGS_backend_connections < 1 || FLAGS_backend_connections > 64) {
      return Fail("--backend_connections must be between 1 and 64");
    }
    b.connections = FLAGS_backend_connections;
    if (FLAGS_backend_protocol == "meta") {
      b.protocol = memshard::backend::BackendProtocol::kMeta;
    } else if (FLAGS_backend_protocol == "text") {
      b.protocol = memshard::backend::BackendProtocol::kText;
    } else {
      return Fail("--backend_protocol must be meta or text");
    }
    if (FLAGS_backend_connect_timeout_ms < 1 || FLAGS_backend_timeout_ms < 1 ||
        FLAGS_backend_retry_ms < 1) {
      return Fail("backend timeouts must be at least 1 ms");
    }
    b.connect_timeout = absl::Milliseconds(FLAGS_backend_connect_timeout_ms);
    b.timeout = absl::Milliseconds(FLAGS_backend_timeout_ms);
    b.retry_interval = absl::Milliseconds(FLAGS_backend_retry_ms);
    b.min_backoff = std::min(b.min_backoff, b.retry_interval);
    if (FLAGS_backend_failure == "error") {
      b.failure = memshard::backend::FailurePolicy::kError;
    } else if (FLAGS_backend_failure == "eject") {
      b.failure = memshard::backend::FailurePolicy::kEject;
    } else {
      return Fail("--backend_failure must be error or eject");
    }
    if (FLAGS_backend_failure_limit < 1) {
      return Fail("--backend_failure_limit must be >= 1");
    }
    b.failure_limit = FLAGS_backend_failure_limit;
    if (FLAGS_backend_max_in_flight < 1) {
      return Fail("--backend_max_in_flight must be >= 1");
    }
    b.max_in_flight = static_cast<size_t>(FLAGS_backend_max_in_flight);
  }

  memshard::SupervisorOptions lifecycle;
  if (!(FLAGS_shutdown_grace >= 0 && FLAGS_shutdown_grace <= 86400)) {
    return Fail("--shutdown_grace must be between 0 and 86400 seconds");
  }
  lifecycle.shutdown_grace = absl::Seconds(FLAGS_shutdown_grace);
  if (!(FLAGS_status_interval >= 0.1 && FLAGS_status_interval <= 86400)) {
    return Fail("--status_interval must be between 0.1 and 86400 seconds");
  }
  lifecycle.status_interval = absl::Seconds(FLAGS_status_interval);
  if (!(FLAGS_testonly_stall_on_sigusr2 >= 0)) {
    return Fail("--testonly_stall_on_sigusr2 must be >= 0");
  }
  lifecycle.stall_on_sigusr2 = absl::Seconds(FLAGS_testonly_stall_on_sigusr2);
  lifecycle.reopen_logs = memshard::ReopenLogFiles;
  std::optional<memshard::UnixUser> user;
  if (!FLAGS_user.empty()) {
    absl::StatusOr<memshard::UnixUser> found = memshard::LookUpUser(FLAGS_user);
    if (!found.ok()) return Fail(std::string(found.status().message()));
    user = *found;
  }

  // Signals are taken by the supervisor (on this thread) only: block them
  // before any other thread starts so every thread inherits the mask.
  memshard::Supervisor::BlockSignals(lifecycle);

  // Startup errors come back before anything listens, as one line.
  std::unique_ptr<memshard::PidFile> pid_file;
  if (!FLAGS_pid_file.empty()) {
    auto created = memshard::PidFile::Create(FLAGS_pid_file, getpid());
    if (!created.ok()) return Fail(std::string(created.status().message()));
    pid_file = *std::move(created);
    lifecycle.before_abort = [&pid_file] { pid_file->Remove(); };
  }
  memshard::Server server(options);
  absl::Status bound = server.Bind();
  if (!bound.ok()) return Fail(std::string(bound.message()));
  if (user.has_value()) {
    absl::Status dropped = memshard::DropPrivileges(*user);
    if (!dropped.ok()) return Fail(std::string(dropped.message()));
    LOG(INFO) << "running as user " << user->name << " (uid " << user->uid
              << ")";
  }
  if (!FLAGS_logtostderr && log_dir_given &&
      access(FLAGS_log_dir.c_str(), W_OK | X_OK) != 0) {
    return Fail("--log_dir=" + FLAGS_log_dir +
                " is not a directory this user can write");
  }
  absl::Status started = server.Start();
  if (!started.ok()) return Fail(std::string(started.message()));

  memshard::Notifier notifier;
  memshard::Supervisor supervisor(&server, &notifier, std::move(lifecycle));
  return supervisor.Run();
}
