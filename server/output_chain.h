#pragma once

// OutputChain: a connection's unsent replies, written with writev.
//
// Thread-safety: none; owned by one connection on its worker's thread.
//
// Small reply bytes are copied into buffers borrowed from the worker's
// BufferPool; item values are not copied at all: the chain references the
// item's bytes and holds an ItemRef, so the value stays alive (by reference
// count) until it has been written, even if the item is replaced or evicted
// meanwhile. Holds no memory while empty.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/buffer_pool.h"
#include "server/cache/store.h"

namespace memshard {

class OutputChain {
 public:
  explicit OutputChain(BufferPool* pool) : pool_(pool) {}
  ~OutputChain() { Clear(); }
  OutputChain(const OutputChain&) = delete;
  OutputChain& operator=(const OutputChain&) = delete;

  // Copies `bytes` to the end of the chain.
  void Append(absl::string_view bytes);
  // References `bytes`, which `item` keeps alive, without copying.
  void AppendItem(cache::ItemRef item, absl::string_view bytes);

  bool empty() const { return pending_ == 0; }
  size_t pending_bytes() const { return pending_; }

  enum class FlushResult { kDone, kBlocked, kError };
  // Writes as much as the socket takes. `*written` gets the bytes sent.
  FlushResult Flush(int fd, size_t* written);

  // Drops everything unsent and returns all memory.
  void Clear();

  // Test hook: the bytes not yet written, concatenated.
  std::string PendingForTest() const;

 private:
  struct Segment {
    const char* data;
    size_t size;
    cache::ItemRef item;  // empty for copied bytes
  };
  // Copied bytes go here; a new buffer is borrowed when it is full.
  char* Tail(size_t* room);
  void PushSegment(const char* data, size_t size, cache::ItemRef item);
  void Advance(size_t n);
  void DestroySegments();

  BufferPool* const pool_;
  // The segment array lives in a pooled buffer too (no malloc per request);
  // a chain with more segments than fit moves to a heap array.
  Buffer* segment_buffer_ = nullptr;
  std::unique_ptr<Segment[]> heap_segments_;
  Segment* segments_ = nullptr;
  size_t segment_capacity_ = 0;
  size_t segment_count_ = 0;
  size_t head_ = 0;  // first unsent segment
  std::vector<Buffer*> buffers_;
  size_t tail_used_ = 0;  // bytes used in buffers_.back()
  size_t pending_ = 0;
};

}  // namespace memshard
