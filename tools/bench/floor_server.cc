// floor_server: the measuring stick for issue 10's S1 and S4, NOT a cache.
//
// A do-nothing single-threaded epoll server that answers text get/set from
// a fixed table, doing per request only what the protocol and the kernel
// force on any server: one read per readiness event, one parse, one table
// probe, one write per read batch. No expiry, no LRU, no eviction, no
// statistics beyond two counters, no memory limit, no metrics, no fairness
// budget, no latency clock. What it costs per request on this machine is
// the floor a real cache (memshard, memcached) can approach but not beat by
// much, so bench.py runs it in the same alternating windows as the others:
// memshard/floor says how much of memshard's cost is the cache, and
// floor/memcached how much any server could win here at all.
//
// Thread-safety: none; one thread does everything.
//
// The table is direct-mapped: a key hashes to one slot of fixed size, with
// a linear probe (of up to kProbe slots) so that a prefill of N keys into
// 2N or more slots keeps every key (the bench checks that every get hits; a
// probe of 8 lost some of 1M keys). A set that finds no free or matching
// slot in the probe overwrites the home slot. Keys up to kMaxKey bytes,
// values up to kMaxValue bytes; anything else, and any command but
// get/gets/set/stats/quit, is answered with an error (a value too large
// closes the connection: this is not a general server).
//
//   floor_server [--listen=127.0.0.1] [--port=11311] [--port_file=PATH]
//                [--slots=2097152]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxKey = 55;
constexpr size_t kMaxValue = 128;  // with its "\r\n"
constexpr size_t kProbe = 64;
constexpr size_t kReadSize = 16384;

// One slot: 192 bytes, three cache lines.
struct Slot {
  uint8_t key_size;  // 0: empty
  uint8_t value_size;
  uint16_t unused;
  uint32_t flags;
  char key[kMaxKey + 1];
  char value[kMaxValue];
};
static_assert(sizeof(Slot) == 192, "slot layout");

Slot* table;
uint64_t table_mask;
uint64_t cmd_get, cmd_set;

uint64_t Hash(const char* p, size_t n) {
  // Eight bytes at a time, multiply and fold: cheap, and good enough for
  // the loadgen's keys.
  uint64_t h = n * 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  memcpy(&w, p + i, n - i);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 29);
}

Slot* Find(const char* key, size_t n) {
  const uint64_t home = Hash(key, n);
  for (size_t i = 0; i < kProbe; ++i) {
    Slot* s = &table[(home + i) & table_mask];
    if (s->key_size == 0) return nullptr;
    if (s->key_size == n && memcmp(s->key, key, n) == 0) return s;
  }
  return nullptr;
}

Slot* Place(const char* key, size_t n) {
  const uint64_t home = Hash(key, n);
  for (size_t i = 0; i < kProbe; ++i) {
    Slot* s = &table[(home + i) & table_mask];
    if (s->key_size == 0 || (s->key_size == n && memcmp(s->key, key, n) == 0))
      return s;
  }
  return &table[home & table_mask];
}

// A connection: its fd, plus bytes kept only across turns that did not
// finish (an incomplete request, an unsent reply); empty otherwise.
struct Conn {
  int fd;
  std::string in;   // incomplete request
  std::string out;  // unsent reply
};

char read_buffer[kReadSize];
// The current turn's replies, shared by all connections: a flat buffer
// written through a cursor (a std::string's append costs more than the
// copy for pieces this small).
struct Out {
  char* data = nullptr;
  size_t size = 0;
  size_t capacity = 0;
  // Room for `n` more bytes.
  void Reserve(size_t n) {
    if (size + n <= capacity) return;
    while (capacity < size + n) capacity = capacity ? capacity * 2 : 1 << 16;
    data = static_cast<char*>(realloc(data, capacity));
  }
  void Put(const char* p, size_t n) {
    memcpy(data + size, p, n);
    size += n;
  }
  bool empty() const { return size == 0; }
  void clear() { size = 0; }
};
Out out;

ssize_t RawRead(int fd, char* p, size_t n) {
  return syscall(SYS_read, fd, p, n);
}

// Appends v in decimal (room reserved by the caller).
void PutNumber(uint64_t v) {
  char digits[24];
  char* end = digits + sizeof(digits);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.Put(p, static_cast<size_t>(end - p));
}

uint64_t ParseNumber(const char* p, const char* end) {
  uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; ++p) v = v * 10 + (*p - '0');
  return v;
}

// Parses and answers every complete request in [p, end). Returns the bytes
// consumed, or -1 to close the connection.
ssize_t Process(const char* begin, const char* end) {
  const char* p = begin;
  while (p < end) {
    const char* nl =
        static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (nl == nullptr) break;
    const char* line_end = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
    const size_t len = static_cast<size_t>(line_end - p);
    if (len > 4 && (memcmp(p, "get ", 4) == 0 || memcmp(p, "gets ", 5) == 0)) {
      const char* k = p + (p[3] == ' ' ? 4 : 5);
      while (k < line_end) {
        while (k < line_end && *k == ' ') ++k;
        const char* ke = static_cast<const char*>(
            memchr(k, ' ', static_cast<size_t>(line_end - k)));
        if (ke == nullptr) ke = line_end;
        if (ke == k) break;
        ++cmd_get;
        const size_t kn = static_cast<size_t>(ke - k);
        if (Slot* s = kn <= kMaxKey ? Find(k, kn) : nullptr) {
          out.Reserve(kMaxKey + kMaxValue + 40);
          out.Put("VALUE ", 6);
          out.Put(k, kn);
          out.Put(" ", 1);
          PutNumber(s->flags);
          out.Put(" ", 1);
          PutNumber(s->value_size - 2u);
          out.Put("\r\n", 2);
          out.Put(s->value, s->value_size);
        }
        k = ke;
      }
      out.Reserve(5);
      out.Put("END\r\n", 5);
      p = nl + 1;
    } else if (len > 4 && memcmp(p, "set ", 4) == 0) {
      // set <key> <flags> <exptime> <bytes> [noreply]
      const char* f[5];
      const char* fe[5];
      int nf = 0;
      for (const char* q = p + 4; q < line_end && nf < 5;) {
        while (q < line_end && *q == ' ') ++q;
        if (q == line_end) break;
        f[nf] = q;
        while (q < line_end && *q != ' ') ++q;
        fe[nf++] = q;
      }
      if (nf < 4) {
        out.Reserve(7);
        out.Put("ERROR\r\n", 7);
        p = nl + 1;
        continue;
      }
      const size_t bytes = ParseNumber(f[3], fe[3]);
      const char* data = nl + 1;
      if (static_cast<size_t>(end - data) < bytes + 2) break;  // incomplete
      const size_t kn = static_cast<size_t>(fe[0] - f[0]);
      if (kn > kMaxKey || bytes + 2 > kMaxValue) return -1;
      ++cmd_set;
      Slot* s = Place(f[0], kn);
      s->key_size = static_cast<uint8_t>(kn);
      memcpy(s->key, f[0], kn);
      s->flags = static_cast<uint32_t>(ParseNumber(f[1], fe[1]));
      s->value_size = static_cast<uint8_t>(bytes + 2);
      memcpy(s->value, data, bytes + 2);
      if (nf < 5) {
        out.Reserve(8);
        out.Put("STORED\r\n", 8);
      }
      p = data + bytes + 2;
    } else if (len == 5 && memcmp(p, "stats", 5) == 0) {
      out.Reserve(128);
      out.Put("STAT cmd_get ", 13);
      PutNumber(cmd_get);
      out.Put("\r\nSTAT cmd_set ", 15);
      PutNumber(cmd_set);
      out.Put("\r\nEND\r\n", 7);
      p = nl + 1;
    } else if (len == 4 && memcmp(p, "quit", 4) == 0) {
      return -1;
    } else {
      out.Reserve(7);
      out.Put("ERROR\r\n", 7);
      p = nl + 1;
    }
  }
  return p - begin;
}

void Close(Conn* c) {
  close(c->fd);  // also leaves the epoll set
  delete c;
}

// Writes c->out (if any) then `out`; keeps what the socket did not take.
// Returns false on a write error.
bool Flush(Conn* c) {
  if (!c->out.empty()) {
    c->out.append(out.data, out.size);
    out.clear();
    ssize_t n = send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN;
    c->out.erase(0, static_cast<size_t>(n));
    return true;
  }
  if (out.empty()) return true;
  ssize_t n = send(c->fd, out.data, out.size, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN) return false;
    n = 0;
  }
  if (static_cast<size_t>(n) < out.size) {
    c->out.assign(out.data + n, out.size - static_cast<size_t>(n));
  }
  out.clear();
  return true;
}

// One readiness event: read once (again only while the read filled the
// buffer, or until EOF once the peer's FIN was seen), answer everything
// complete, write once per read. Returns false if it closed `c`.
bool OnReadable(Conn* c, bool hup) {
  ssize_t n;
  for (;;) {
    const char* begin;
    const char* end;
    if (c->in.empty()) {
      n = RawRead(c->fd, read_buffer, kReadSize);
      if (n <= 0) break;
      begin = read_buffer;
      end = read_buffer + n;
    } else {
      const size_t had = c->in.size();
      c->in.resize(had + kReadSize);
      n = RawRead(c->fd, &c->in[had], kReadSize);
      c->in.resize(had + (n > 0 ? n : 0));
      if (n <= 0) break;
      begin = c->in.data();
      end = begin + c->in.size();
    }
    const ssize_t used = Process(begin, end);
    if (used < 0) {
      Flush(c);
      Close(c);
      return false;
    }
    if (c->in.empty()) {
      if (begin + used < end) c->in.assign(begin + used, end);
    } else {
      c->in.erase(0, static_cast<size_t>(used));
    }
    if (!Flush(c)) {
      Close(c);
      return false;
    }
    if (static_cast<size_t>(n) < kReadSize && !hup) return true;  // drained
  }
  if (n < 0 && errno == EAGAIN && !hup) return true;
  Close(c);  // EOF, an error, or EAGAIN after the peer's FIN
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_address = "127.0.0.1";
  int port = 11311;
  std::string port_file;
  uint64_t slots = uint64_t{1} << 21;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--listen=", 0) == 0) {
      listen_address = a.substr(9);
    } else if (a.rfind("--port=", 0) == 0) {
      port = atoi(a.c_str() + 7);
    } else if (a.rfind("--port_file=", 0) == 0) {
      port_file = a.substr(12);
    } else if (a.rfind("--slots=", 0) == 0) {
      slots = strtoull(a.c_str() + 8, nullptr, 10);
    } else {
      fprintf(stderr,
              "usage: %s [--listen=ADDR] [--port=N] "
              "[--port_file=PATH] [--slots=N]\n",
              argv[0]);
      return 2;
    }
  }
  uint64_t size = 1;
  while (size < slots) size <<= 1;
  table_mask = size - 1;
  // Untouched slots cost no memory (zero pages until written).
  void* mem = mmap(nullptr, size * sizeof(Slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  table = static_cast<Slot*>(mem);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, listen_address.c_str(), &addr.sin_addr) != 1 ||
      bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(lfd, 4096) != 0) {
    perror("bind/listen");
    return 1;
  }
  socklen_t alen = sizeof(addr);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      perror("port_file");
      return 1;
    }
    fprintf(f, "%d\n", ntohs(addr.sin_port));
    fclose(f);
    rename(tmp.c_str(), port_file.c_str());
  }

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  out.Reserve(1 << 16);
  std::vector<epoll_event> events(256);
  for (;;) {
    const int n =
        static_cast<int>(syscall(SYS_epoll_wait, ep, events.data(), 256, -1));
    for (int i = 0; i < n; ++i) {
      Conn* c = static_cast<Conn*>(events[i].data.ptr);
      if (c == nullptr) {
        for (;;) {
          const int fd =
              accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          // As memcached and memshard do: replies leave at once.
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          Conn* nc = new Conn{fd, {}, {}};
          epoll_event cev{};
          // Edge-triggered, EPOLLOUT included: an unsent reply waits for
          // its edge with no epoll_ctl on any path.
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.ptr = nc;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      const uint32_t e = events[i].events;
      if (e & EPOLLERR) {
        Close(c);
        continue;
      }
      if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) &&
          !OnReadable(c, (e & (EPOLLRDHUP | EPOLLHUP)) != 0)) {
        continue;  // closed
      }
      if ((e & EPOLLOUT) && !c->out.empty() && !Flush(c)) Close(c);
    }
  }
}
