#include "server/server.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "core/socket.h"
#include "glog/logging.h"
#include "server/admin/admin_endpoint.h"

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
  // SO_REUSEPORT would let us share a port with another memshard of the
  // same user, each getting a random share of the clients. A probe bound
  // without it fails if anybody listens there already.
  if (port != 0) {
    for (const std::string& address : o.listen) {
      absl::StatusOr<int> probe = ListenTcp(address, port, false, 1);
      if (!probe.ok()) return probe.status();
      close(*probe);
    }
  }
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

absl::Status Server::Bind() {
  CHECK(!bound_ && !started_);
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
  absl::StatusOr<std::unique_ptr<AdminHttpServer>> admin = BindAdminEndpoint(o);
  if (!admin.ok()) return admin.status();
  admin_ = *std::move(admin);

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
  absl::Status credentials = LoadCredentials();
  if (!credentials.ok()) return credentials;
  absl::Status backends = SetUpBackends();
  if (!backends.ok()) return backends;
  context_.connections.clear();
  for (int i = 0; i < workers; ++i) {
    context_.connections.push_back(std::make_unique<ConnectionDirectory>());
  }

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
  bound_ = true;
  return absl::OkStatus();
}

absl::Status Server::SetUpBackends() {
  const ServerOptions& o = context_.options;
  if (o.mode == ServerOptions::Mode::kCache) return absl::OkStatus();
  if (o.backend.backends.empty()) {
    return absl::InvalidArgumentError(
        "--mode=proxy and --mode=l1l2 need --backends");
  }
  // Resolved once here, so a bad name fails start-up rather than a worker.
  absl::StatusOr<std::vector<backend::ResolvedAddress>> resolved =
      backend::ResolveBackends(o.backend.backends);
  if (!resolved.ok()) return resolved.status();
  context_.backend_addresses = *std::move(resolved);
  backend_stats_ = std::make_unique<backend::BackendStatsRegistry>(
      context_.workers, static_cast<int>(o.backend.backends.size()));
  context_.backend_stats = backend_stats_.get();
  return absl::OkStatus();
}

absl::Status Server::LoadCredentials() {
  const ServerOptions& o = context_.options;
  if (!o.auth_file.empty()) {
    auto auth = Authenticator::FromFile(o.auth_file);
    if (!auth.ok()) return auth.status();
    ascii_auth_ = *std::move(auth);
    AddReloadHook("--auth_file",
                  [a = ascii_auth_.get()] { return a->Reload(); });
  }
  if (!o.sasl_password_file.empty()) {
    auto auth = Authenticator::FromFile(o.sasl_password_file);
    if (!auth.ok()) return auth.status();
    sasl_auth_ = *std::move(auth);
    AddReloadHook("--sasl_password_file",
                  [a = sasl_auth_.get()] { return a->Reload(); });
  }
  // No protocol may bypass authentication that is configured for another.
  context_.ascii_auth = ascii_auth_ ? ascii_auth_.get() : sasl_auth_.get();
  context_.sasl_auth = sasl_auth_ ? sasl_auth_.get() : ascii_auth_.get();
  return absl::OkStatus();
}

absl::Status Server::Start() {
  CHECK(!started_);
  if (!bound_) {
    absl::Status bound = Bind();
    if (!bound.ok()) return bound;
  }
  const int workers = context_.workers;
  const bool pin = slots_[0].worker->cpu() >= 0;
  absl::BlockingCounter ready(workers);
  for (Slot& slot : slots_) {
    slot.worker->Start([this, &slot, &ready] {
      slot.table =
          std::make_unique<ConnectionTable>(slot.worker.get(), &context_);
      if (context_.options.expiry_sweep) {
        slot.sweeper = std::make_unique<ExpirySweeper>(
            &slot.worker->loop(), store_.get(), slot.worker->index(),
            context_.workers);
      }
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
  // Before the port file, so a reader of the port file finds the admin
  // port file too.
  if (admin_ != nullptr) {
    absl::Status admin_started = StartAdminEndpoint(admin_.get(), &context_);
    if (!admin_started.ok()) return admin_started;
  }
  return WritePortFile();
}

void Server::Stop() {
  if (bound_ && !started_) {
    // Bound, never started (e.g. dropping privileges failed).
    admin_.reset();
    for (Slot& slot : slots_) {
      for (int fd : slot.tcp_fds) close(fd);
    }
    slots_.clear();
    if (unix_fd_ >= 0) {
      close(unix_fd_);
      unlink(context_.options.unix_socket.c_str());
      unix_fd_ = -1;
    }
    bound_ = false;
    return;
  }
  if (!started_) return;
  started_ = false;
  bound_ = false;
  admin_.reset();  // joins the admin thread
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
    // After a drain the path may already belong to a new instance.
    if (!unix_unlinked_) unlink(context_.options.unix_socket.c_str());
    unix_fd_ = -1;
  }
}

void Server::BeginDrain(absl::AnyInvocable<void()> on_drained) {
  CHECK(started_);
  // New clients of the unix socket find nothing; the fd stays open (the
  // workers' listeners share it) until Stop().
  if (unix_fd_ >= 0 && !unix_unlinked_) {
    unlink(context_.options.unix_socket.c_str());
    unix_unlinked_ = true;
  }
  struct Countdown {
    std::atomic<int> left;
    absl::AnyInvocable<void()> done;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->left = static_cast<int>(slots_.size());
  countdown->done = std::move(on_drained);
  for (Slot& slot : slots_) {
    Slot* s = &slot;
    slot.worker->Post([s, countdown] {
      s->listeners.clear();  // closes this worker's TCP listening sockets
      s->table->BeginDrain([countdown] {
        if (countdown->left.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
            countdown->done) {
          countdown->done();
        }
      });
    });
  }
}

void Server::AddReloadHook(std::string name, ReloadHook hook) {
  reload_hooks_.emplace_back(std::move(name), std::move(hook));
}

void Server::AddWorkerReloadHook(WorkerReloadHook hook) {
  worker_reload_hooks_.push_back(std::move(hook));
}

absl::Status Server::Reload(absl::Duration timeout) {
  absl::Status status = absl::OkStatus();
  for (auto& [name, hook] : reload_hooks_) {
    absl::Status s = hook();
    if (s.ok()) {
      LOG(INFO) << "reloaded " << name;
    } else {
      LOG(ERROR) << "reloading " << name
                 << " failed (keeping the old one): " << s;
      if (status.ok()) {
        status = absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
      }
    }
  }
  if (!started_) return status;
  // Shared with the posted tasks, which may outlive a timed-out wait.
  // std::mutex for ThreadSanitizer's sake (see core/event_loop.h).
  struct Countdown {
    std::mutex mu;
    std::condition_variable done;
    int left = 0;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->left = static_cast<int>(slots_.size());
  for (Slot& slot : slots_) {
    Slot* s = &slot;
    // Copied: a hook added later must not race this reload.
    slot.worker->Post([s, countdown, hooks = worker_reload_hooks_] {
      for (const WorkerReloadHook& hook : hooks) hook(*s->table);
      std::lock_guard<std::mutex> lock(countdown->mu);
      if (--countdown->left == 0) countdown->done.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(countdown->mu);
  if (!countdown->done.wait_for(
          lock, absl::ToChronoNanoseconds(timeout),
          [&countdown] { return countdown->left == 0; })) {
    return absl::DeadlineExceededError(
        absl::StrCat(countdown->left,
                     " worker(s) did not apply the reload "
                     "within ",
                     absl::FormatDuration(timeout)));
  }
  return status;
}

void Server::RequestCheckIns() {
  for (Slot& slot : slots_) slot.worker->RequestCheckIn();
}

int Server::StuckWorker(absl::Time since) const {
  for (const Slot& slot : slots_) {
    if (slot.worker->last_check_in() < since) return slot.worker->index();
  }
  return -1;
}

absl::Time Server::last_check_in(int worker) const {
  return slots_.at(worker).worker->last_check_in();
}

int64_t Server::connections() const {
  return context_.curr_connections.load(std::memory_order_relaxed);
}

uint64_t Server::operations() const {
  if (metrics_ == nullptr) return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < metrics_->workers(); ++i) {
    total += metrics_->WorkerOps(i);
  }
  return total;
}

void Server::StallWorkerForTest(int index, absl::Duration duration) {
  if (index < 0 || index >= static_cast<int>(slots_.size())) return;
  LOG(WARNING) << "test hook: stalling worker " << index << " for "
               << absl::FormatDuration(duration);
  slots_[index].worker->Post([duration] { absl::SleepFor(duration); });
}

}  // namespace memshard
