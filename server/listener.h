#pragma once

// Listener: accepts on one listening socket for one worker and hands each
// new socket to that worker's ConnectionTable.
//
// Thread-safety: none; lives on its worker's thread. The TCP listening socket
// is the worker's own (SO_REUSEPORT); a unix socket is shared by every worker
// and registered with EPOLLEXCLUSIVE so one wakes per connection.
//
// Level-triggered, with a bounded number of accepts per event, so a burst of
// connects cannot starve the worker's existing connections.

#include <cstdint>

#include "core/event_loop.h"
#include "server/connection_table.h"

namespace memshard {

class Listener : public EventHandler {
 public:
  static constexpr int kMaxAcceptsPerEvent = 64;

  // Does not own `fd` when `shared` (the unix socket); owns it otherwise.
  Listener(int fd, bool tcp, bool shared, ConnectionTable* table);
  ~Listener() override;

  absl::Status Register();
  void OnEvents(uint32_t events) override;

 private:
  // Out of file descriptors: stop accepting for a moment rather than spin.
  void Pause();

  const int fd_;
  const bool tcp_;
  const bool shared_;
  ConnectionTable* const table_;
  bool paused_ = false;
};

}  // namespace memshard
