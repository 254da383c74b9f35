// libFuzzer target: one whole server Connection, in process, in cache mode.
//
// Each input builds a fresh server slice: an embedded Store with a small
// memory budget, a Worker's EventLoop and BufferPool (driven on this thread,
// its thread never started), a ConnectionTable, and one connection admitted
// on one end of a socketpair. The fuzzer then plays the client on the other
// end from an epoch hook of the loop: each loop iteration it reads every
// reply available and writes the next chunk of the input; after the last
// chunk it half-closes (or, if the input asks, closes outright), and keeps
// the loop turning until the server has closed the connection.
//
// Input: byte 0 holds options (bits 0-3: how many chunk sizes follow, 0 =
// one write; bit 4: close instead of half-close at the end; bit 5: 64-byte
// pool buffers instead of 16 KiB, so requests straddle buffers and grow
// into heap blocks; bit 6: authentication on, as with --auth_file and
// --sasl_password_file, user "user" password "pass"), then that many bytes
// each giving a chunk size (1..256; cycled), then the bytes the client
// sends.
//
// Checked: no crash, no sanitizer report, no leak (LSan, per input); the
// server closes the connection within a bounded number of loop iterations
// after the client's EOF; the store ends within its memory budget, which
// only cache_memlimit (to 8 MiB or more) changes; and (unless the client
// closed outright) the replies are well framed: text/meta replies per
// CheckAsciiReplies, binary ones per CheckBinaryReplies, by the first byte
// sent, as the server picks.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "core/buffer_pool.h"
#include "core/worker.h"
#include "glog/logging.h"
#include "metrics/worker_metrics.h"
#include "server/auth/authenticator.h"
#include "server/cache/store.h"
#include "server/connection_table.h"
#include "server/protocol/binary_parser.h"
#include "server/server_context.h"
#include "testing/fuzz/reply_framing.h"

namespace memshard::fuzz {
namespace {

// Loop iterations allowed per input: every iteration either moves bytes or
// lets the server run a budget of requests, so this is a hang, not work.
constexpr int kMaxIterations = 200000;

struct Plan {
  std::vector<size_t> chunk_sizes;  // empty: one write
  bool abrupt_close = false;
  bool small_buffers = false;
  bool authentication = false;
  absl::string_view stream;
};

Plan ParsePlan(absl::string_view input) {
  Plan plan;
  if (input.empty()) return plan;
  const uint8_t options = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  plan.abrupt_close = options & 0x10;
  plan.small_buffers = options & 0x20;
  plan.authentication = options & 0x40;
  const size_t sizes = std::min<size_t>(options & 0x0f, input.size());
  for (size_t i = 0; i < sizes; ++i) {
    plan.chunk_sizes.push_back(static_cast<uint8_t>(input[i]) + 1u);
  }
  input.remove_prefix(sizes);
  plan.stream = input;
  return plan;
}

// The client end, driven once per loop iteration (an epoch hook).
class Client {
 public:
  Client(int fd, const Plan& plan, EventLoop* loop, ServerContext* context)
      : fd_(fd), plan_(plan), loop_(loop), context_(context) {}
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }

  void Step() {
    ++iterations_;
    Read();
    Write();
    if (finished_writing_ && (eof_ || fd_ < 0) &&
        context_->curr_connections.load() == 0) {
      loop_->Stop();
      return;
    }
    CHECK_LT(iterations_, kMaxIterations)
        << "the connection is still open " << iterations_
        << " loop iterations after the client finished";
    // Keeps the loop from blocking in epoll_wait: nothing outside this
    // process will wake it.
    loop_->RunSoon([] {});
  }

  const std::string& replies() const { return replies_; }
  bool reset() const { return reset_; }

 private:
  void Read() {
    if (fd_ < 0 || eof_) return;
    char buffer[65536];
    for (;;) {
      const ssize_t n = read(fd_, buffer, sizeof(buffer));
      if (n > 0) {
        replies_.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        eof_ = true;
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // The server closed with our bytes unread: what it sent before is
      // all there is.
      eof_ = true;
      reset_ = true;
      return;
    }
  }

  void Write() {
    if (finished_writing_) return;
    if (sent_ < plan_.stream.size() && !peer_gone_) {
      size_t size = plan_.stream.size() - sent_;
      if (!plan_.chunk_sizes.empty()) {
        size = std::min(size,
                        plan_.chunk_sizes[chunk_ % plan_.chunk_sizes.size()] -
                            chunk_offset_);
      }
      const ssize_t n =
          send(fd_, plan_.stream.data() + sent_, size, MSG_NOSIGNAL);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
        chunk_offset_ += static_cast<size_t>(n);
        if (!plan_.chunk_sizes.empty() &&
            chunk_offset_ ==
                plan_.chunk_sizes[chunk_ % plan_.chunk_sizes.size()]) {
          ++chunk_;
          chunk_offset_ = 0;
        }
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR) {
        peer_gone_ = true;  // EPIPE, ECONNRESET: the server closed
      }
      if (sent_ < plan_.stream.size() && !peer_gone_) return;
    }
    finished_writing_ = true;
    if (plan_.abrupt_close) {
      close(fd_);
      fd_ = -1;
    } else {
      shutdown(fd_, SHUT_WR);
    }
  }

  int fd_;
  const Plan& plan_;
  EventLoop* const loop_;
  ServerContext* const context_;
  int iterations_ = 0;
  size_t sent_ = 0;
  size_t chunk_ = 0;
  size_t chunk_offset_ = 0;
  bool peer_gone_ = false;
  bool finished_writing_ = false;
  bool eof_ = false;
  bool reset_ = false;
  std::string replies_;
};

void RunOne(const Plan& plan) {
  ServerContext context;
  context.options.workers = 1;
  context.options.max_connections = 4;
  context.options.memory_limit_mb = 1;
  // Small, so the fuzzer reaches too-large values and evictions with short
  // inputs.
  context.options.max_item_size = 2048;
  context.options.expiry_sweep = false;
  context.options.admin_port = 0;
  context.workers = 1;
  context.pid = getpid();
  context.start_time = absl::Now();

  cache::StoreOptions store_options;
  store_options.memory_limit_bytes = 64 * 1024;
  store_options.max_item_size = context.options.max_item_size;
  store_options.stripes = 4;
  auto store = std::make_unique<cache::Store>(store_options);
  auto metrics = std::make_unique<MetricsRegistry>(1);
  context.store = store.get();
  context.metrics = metrics.get();
  if (plan.authentication) {
    static const Authenticator* const authenticator =
        Authenticator::FromText("user:pass\n")->release();
    context.ascii_auth = authenticator;
    context.sasl_auth = authenticator;
  }

  // The worker's thread is never started: its loop runs here.
  auto worker = std::make_unique<Worker>(
      0, -1, plan.small_buffers ? 64 : BufferPool::kDefaultBufferSize);
  auto table = std::make_unique<ConnectionTable>(worker.get(), &context);

  int fds[2];
  PCHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                    fds) == 0);
  Client client(fds[1], plan, &worker->loop(), &context);
  table->Admit(fds[0]);
  CHECK_EQ(context.curr_connections.load(), 1);
  worker->loop().AddEpochHook([&client] { client.Step(); });
  worker->loop().RunSoon([] {});
  worker->loop().Run();

  table.reset();
  worker.reset();
  CHECK_EQ(context.curr_connections.load(), 0);

  // The memory budget is hard, and only cache_memlimit (8 MiB or more)
  // changes it.
  const cache::StoreStats stats = store->GetStats();
  CHECK(stats.limit_maxbytes == store_options.memory_limit_bytes ||
        stats.limit_maxbytes >= (uint64_t{8} << 20))
      << "memory limit is now " << stats.limit_maxbytes << " bytes after \""
      << absl::CEscape(plan.stream.substr(0, 2000)) << "\"";
  CHECK_LE(stats.bytes, stats.limit_maxbytes);
  if (plan.abrupt_close) return;

  const std::string& replies = client.replies();
  absl::Status framed;
  if (plan.stream.empty()) {
    CHECK(replies.empty()) << "replies to nothing: \"" << absl::CEscape(replies)
                           << "\"";
  } else if (static_cast<uint8_t>(plan.stream[0]) == kBinaryRequestMagic) {
    framed = CheckBinaryReplies(replies);
  } else {
    framed = CheckAsciiReplies(replies);
  }
  CHECK(framed.ok()) << framed << "\nsent (" << plan.stream.size()
                     << " bytes): \""
                     << absl::CEscape(plan.stream.substr(0, 2000)) << "\"";
}

}  // namespace
}  // namespace memshard::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // As main.cc does: a write to a closed socket must not kill the server.
  signal(SIGPIPE, SIG_IGN);
  // Connections log nothing per request, but keep stderr for reports.
  FLAGS_minloglevel = 1;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  memshard::fuzz::RunOne(memshard::fuzz::ParsePlan(input));
  return 0;
}
