#include "server/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "glog/logging.h"

namespace memshard {

Listener::Listener(int fd, bool tcp, bool shared, ConnectionTable* table)
    : fd_(fd), tcp_(tcp), shared_(shared), table_(table) {}

Listener::~Listener() {
  table_->loop().Remove(fd_);
  if (!shared_) close(fd_);
}

absl::Status Listener::Register() {
  uint32_t events = EPOLLIN;
  if (shared_) events |= EPOLLEXCLUSIVE;
  return table_->loop().Add(fd_, events, this);
}

void Listener::OnEvents(uint32_t events) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    // The peer's address comes with the accept, saving `stats conns` a
    // getpeername per connection.
    sockaddr_storage peer;
    socklen_t peer_length = sizeof(peer);
    int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        LOG_EVERY_N(WARNING, 100) << "accept: " << strerror(errno);
        Pause();
      }
      return;  // EAGAIN: another worker took it, or the queue is empty
    }
    if (tcp_) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    table_->Admit(fd, reinterpret_cast<const sockaddr*>(&peer), peer_length);
  }
}

void Listener::Pause() {
  if (paused_) return;
  paused_ = true;
  table_->metrics().Add(Counter::listen_disabled_num);
  table_->loop().Remove(fd_);
  table_->loop().AddTimer(absl::Milliseconds(100), [this] {
    paused_ = false;
    absl::Status s = Register();
    LOG_IF(ERROR, !s.ok()) << "re-arming listener: " << s;
  });
}

}  // namespace memshard
