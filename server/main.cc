// memshard: flags to ServerOptions, logging, signals. Nothing else.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
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
DEFINE_uint64(max_item_size, 1024 * 1024,
              "Largest value accepted, in bytes (up to 128 MiB)");
DEFINE_int32(backlog, 1024, "listen(2) backlog per socket");

namespace {

int Fail(const std::string& message) {
  fprintf(stderr, "memshard: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("memcached-compatible cache server and proxy");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

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
  options.memory_limit_mb = FLAGS_memory_limit_mb;
  if (FLAGS_max_item_size < 1024 || FLAGS_max_item_size > (128u << 20)) {
    return Fail("--max_item_size must be between 1 KiB and 128 MiB");
  }
  options.max_item_size = FLAGS_max_item_size;
  options.backlog = FLAGS_backlog;

  // Signals are taken synchronously by this thread only: block them before
  // any worker starts so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  memshard::Server server(options);
  absl::Status started = server.Start();
  if (!started.ok()) return Fail(std::string(started.message()));

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << "signal " << signal_number << ": stopping";
  server.Stop();
  return 0;
}
