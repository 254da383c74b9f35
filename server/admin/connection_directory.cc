#include "server/admin/connection_directory.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace memshard {

absl::string_view ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kWaiting:
      return "conn_waiting";
    case ConnectionState::kReading:
      return "conn_nread";
    case ConnectionState::kWriting:
      return "conn_mwrite";
    case ConnectionState::kClosing:
      return "conn_closing";
  }
  return "conn_unknown";
}

std::string ConnectionRecord::Address(absl::string_view unix_path) const {
  char text[INET6_ADDRSTRLEN] = "";
  switch (family_) {
    case AF_INET:
      inet_ntop(AF_INET, address_.data(), text, sizeof(text));
      return absl::StrCat("tcp:", text, ":", port_);
    case AF_INET6:
      inet_ntop(AF_INET6, address_.data(), text, sizeof(text));
      return absl::StrCat("tcp6:[", text, "]:", port_);
    case AF_UNIX:
      return absl::StrCat("unix:", unix_path);
    default:
      return "unknown";
  }
}

void ConnectionDirectory::Link(ConnectionRecord* record, int fd, absl::Time now,
                               const sockaddr* peer, socklen_t peer_length) {
  record->fd_ = fd;
  sockaddr_storage asked{};
  if (peer == nullptr) {
    peer_length = sizeof(asked);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&asked), &peer_length) ==
        0) {
      peer = reinterpret_cast<const sockaddr*>(&asked);
    }
  }
  if (peer != nullptr && peer_length >= sizeof(sa_family_t)) {
    record->family_ = peer->sa_family;
    if (peer->sa_family == AF_INET && peer_length >= sizeof(sockaddr_in)) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(peer);
      std::memcpy(record->address_.data(), &in->sin_addr, 4);
      record->port_ = ntohs(in->sin_port);
    } else if (peer->sa_family == AF_INET6 &&
               peer_length >= sizeof(sockaddr_in6)) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(peer);
      std::memcpy(record->address_.data(), &in6->sin6_addr, 16);
      record->port_ = ntohs(in6->sin6_port);
    }
  }
  record->SetLastActive(now);
  std::lock_guard<std::mutex> lock(mu_);
  record->prev_ = tail_;
  record->next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = record;
  } else {
    head_ = record;
  }
  tail_ = record;
  ++size_;
}

void ConnectionDirectory::Unlink(ConnectionRecord* record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (record->prev_ == nullptr && head_ != record) return;  // not linked
  if (record->prev_ != nullptr) {
    record->prev_->next_ = record->next_;
  } else {
    head_ = record->next_;
  }
  if (record->next_ != nullptr) {
    record->next_->prev_ = record->prev_;
  } else {
    tail_ = record->prev_;
  }
  record->prev_ = record->next_ = nullptr;
  --size_;
}

void ConnectionDirectory::ForEach(
    absl::FunctionRef<void(const ConnectionRecord&)> visit) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const ConnectionRecord* r = head_; r != nullptr; r = r->next_) {
    visit(*r);
  }
}

size_t ConnectionDirectory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

}  // namespace memshard
