#pragma once

// ServerOptions: everything the server is told at start-up. main.cc fills it
// from flags; libraries never read flags.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/backend/backend_options.h"

namespace memshard {

struct ServerOptions {
  // Addresses to listen on (IPv4 or IPv6 literals); every worker binds its
  // own SO_REUSEPORT socket to each.
  std::vector<std::string> listen = {"127.0.0.1"};
  // 0: the kernel picks one port, shared by every worker and address.
  uint16_t port = 11211;
  // If set, the bound TCP port is written here once every worker listens.
  std::string port_file;
  std::string unix_socket;
  uint32_t unix_socket_mode = 0700;
  int backlog = 1024;

  // 0: one per online CPU.
  int workers = 0;
  bool pin_workers = true;

  int max_connections = 4096;
  absl::Duration idle_timeout = absl::ZeroDuration();  // zero: off

  // memcached -Y: "user:password" lines; ascii connections must send the
  // auth handshake first. Empty: off.
  std::string auth_file;
  // Binary SASL PLAIN credentials, same format. Empty: off. When only one
  // of the two files is given, both protocols check it.
  std::string sasl_password_file;

  uint64_t memory_limit_mb = 64;
  // Reclaim expired items in the background (like memcached's LRU crawler;
  // off: only lazily, on access and eviction).
  bool expiry_sweep = true;
  uint64_t max_item_size = 1024 * 1024;

  // Admin HTTP endpoint (/metrics, /healthz) on 127.0.0.1: 0 disables it,
  // -1 lets the kernel pick a port (tests; see admin_port_file).
  int admin_port = 11299;
  // If set, the bound admin port is written here once it serves.
  std::string admin_port_file;

  // Orchestration (server/orca/proxy_orca.h): kCache answers from the
  // embedded store only; kProxy sends every request to the backends;
  // kL1L2 puts the embedded store as L1 in front of the backends as L2.
  enum class Mode : uint8_t { kCache, kProxy, kL1L2 };
  Mode mode = Mode::kCache;
  // kL1L2: whether L2 read hits fill L1 (kRead), or L1 is only refreshed,
  // by replace, when a write goes through (kWriteOnly).
  enum class L1Fill : uint8_t { kRead, kWriteOnly };
  L1Fill l1_fill = L1Fill::kRead;
  // The backend pool of kProxy and kL1L2 (--backends, --backend_*).
  backend::BackendOptions backend;
};

}  // namespace memshard
