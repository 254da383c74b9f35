#include "server/server.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "core/socket.h"
#include "glog/logging.h"

namespace memshard {
namespace {

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) {
    for (long i = 0; i < sysconf(_SC_NPROCESSORS_ONLN); ++i) cpus.push_back(i);
  }
  return cpus;
}

// Every connection needs a descriptor: raise the soft limit toward what
// --max_connections asks for (never above the hard limit).
void RaiseFileLimit(int max_connections, int workers) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t want = static_cast<rlim_t>(max_connections) + 64 + 4 * workers;
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = std::min(want, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < want) {
    LOG(WARNING) << "open-file limit " << limit.rlim_cur
                 << " is below what --max_connections=" << max_connections
                 << " needs (" << want << ")";
  }
}

}  // namespace

Server::Server(const ServerOptions& options) { context_.options = options; }

Server::~Server() { Stop(); }

absl::Status Server::BindAll() {
  const ServerOptions& o = context_.options;
  uint16_t port = o.port;
  for (Slot& slot : slots_) {
    for (const std::string& address : o.listen) {
      absl::StatusOr<int> fd = ListenTcp(address, port, true, o.backlog);
      if (!fd.ok()) return fd.status();
      slot.tcp_fds.push_back(*fd);
      if (port == 0) {
        // The kernel chose: every other socket joins that port.
        absl::StatusOr<uint16_t> bound = BoundPort(*fd);
        if (!bound.ok()) return bound.status();
        port = *bound;
      }
    }
  }
  port_ = port;
  if (!o.unix_socket.empty()) {
    absl::StatusOr<int> fd =
        ListenUnix(o.unix_socket, o.unix_socket_mode, o.backlog);
    if (!fd.ok()) return fd.status();
    unix_fd_ = *fd;
  }
  return absl::OkStatus();
}

absl::Status Server::WritePortFile() const {
  const std::string& path = context_.options.port_file;
  if (path.empty()) return absl::OkStatus();
  // Write then rename, so a reader never sees a half-written file.
  std::string tmp = absl::StrCat(path, ".tmp");
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("open ", tmp));
  fprintf(f, "%u\n", port_);
  fclose(f);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("rename to ", path));
  }
  return absl::OkStatus();
}

absl::Status Server::Start() {
  CHECK(!started_);
  const ServerOptions& o = context_.options;
  std::vector<int> cpus = AllowedCpus();
  int workers = o.workers > 0 ? o.workers : static_cast<int>(cpus.size());
  bool pin = o.pin_workers && workers <= static_cast<int>(cpus.size());
  if (o.listen.empty() && o.unix_socket.empty()) {
    return absl::InvalidArgumentError("nothing to listen on");
  }
  if (o.max_connections < 1) {
    return absl::InvalidArgumentError("--max_connections must be positive");
  }
  RaiseFileLimit(o.max_connections, workers);

  cache::StoreOptions store_options;
  store_options.memory_limit_bytes = o.memory_limit_mb << 20;
  store_options.max_item_size = o.max_item_size;
  store_ = std::make_unique<cache::Store>(store_options);
  metrics_ = std::make_unique<MetricsRegistry>(workers);
  context_.store = store_.get();
  context_.metrics = metrics_.get();
  context_.workers = workers;
  context_.pid = getpid();
  context_.start_time = absl::Now();

  slots_.resize(workers);
  for (int i = 0; i < workers; ++i) {
    slots_[i].worker = std::make_unique<Worker>(i, pin ? cpus[i] : -1);
  }
  absl::Status bound = BindAll();
  if (!bound.ok()) {
    for (Slot& slot : slots_) {
      for (int fd : slot.tcp_fds) close(fd);
    }
    slots_.clear();
    return bound;
  }

  absl::BlockingCounter ready(workers);
  for (Slot& slot : slots_) {
    slot.worker->Start([this, &slot, &ready] {
      slot.table =
          std::make_unique<ConnectionTable>(slot.worker.get(), &context_);
      slot.sweeper = std::make_unique<ExpirySweeper>(
          &slot.worker->loop(), store_.get(), slot.worker->index(),
          context_.workers);
      for (int fd : slot.tcp_fds) {
        slot.listeners.push_back(std::make_unique<Listener>(
            fd, /*tcp=*/true, /*shared=*/false, slot.table.get()));
      }
      if (unix_fd_ >= 0) {
        slot.listeners.push_back(std::make_unique<Listener>(
            unix_fd_, /*tcp=*/false, /*shared=*/true, slot.table.get()));
      }
      for (auto& listener : slot.listeners) {
        absl::Status s = listener->Register();
        CHECK(s.ok()) << s;
      }
      ready.DecrementCount();
    });
  }
  ready.Wait();
  started_ = true;
  LOG(INFO) << "memshard listening on port " << port_ << " with " << workers
            << " workers" << (pin ? " (pinned)" : "");
  return WritePortFile();
}

void Server::Stop() {
  if (!started_) return;
  started_ = false;
  for (Slot& slot : slots_) {
    Slot* s = &slot;
    slot.worker->Post([s] {
      s->listeners.clear();
      s->table->CloseAll();
    });
    slot.worker->Stop();
  }
  for (Slot& slot : slots_) slot.worker->Join();
  slots_.clear();
  if (unix_fd_ >= 0) {
    close(unix_fd_);
    unlink(context_.options.unix_socket.c_str());
    unix_fd_ = -1;
  }
}

}  // namespace memshard
