#pragma once

// BufferPool: fixed-size byte buffers for one worker thread.
//
// Thread-safety: none. A pool belongs to one worker and is used only on that
// worker's thread ("thread-local" by ownership, not by thread_local storage,
// so tests can make as many as they like).
//
// Connections borrow a buffer only while they hold unparsed input or unsent
// output and give it back as soon as they are drained, so an idle connection
// holds none. At each epoch boundary (end of an event-loop iteration) the
// free list is trimmed toward the recent peak of buffers in use, so memory
// follows load instead of the all-time high water mark.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace memshard {

class BufferPool;

// A borrowed buffer. `data()` has `capacity()` bytes; `size` counts the bytes
// in use, which the borrower manages.
class Buffer {
 public:
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }

 private:
  friend class BufferPool;
  explicit Buffer(size_t capacity)
      : data_(new char[capacity]), capacity_(capacity) {}
  std::unique_ptr<char[]> data_;
  size_t capacity_;
};

struct BufferPoolStats {
  uint64_t in_use = 0;     // buffers currently borrowed
  uint64_t free = 0;       // buffers cached on the free list
  uint64_t allocated = 0;  // total ever allocated
  uint64_t trimmed = 0;    // total freed by epoch trimming
};

class BufferPool {
 public:
  static constexpr size_t kDefaultBufferSize = 16 * 1024;

  explicit BufferPool(size_t buffer_size = kDefaultBufferSize);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  size_t buffer_size() const { return buffer_size_; }

  // Never fails (allocates when the free list is empty).
  Buffer* Acquire();
  // `buffer` must have come from this pool.
  void Release(Buffer* buffer);

  // Epoch boundary: keep at most the recent peak demand (decaying) cached.
  void OnEpoch();

  BufferPoolStats stats() const;

 private:
  const size_t buffer_size_;
  std::vector<Buffer*> free_;
  uint64_t in_use_ = 0;
  // Highest in_use_ seen in the current epoch.
  uint64_t epoch_peak_ = 0;
  // Decaying estimate of recent peak demand; the free list keeps
  // target_ - in_use_ buffers.
  uint64_t target_ = 0;
  uint64_t allocated_ = 0;
  uint64_t trimmed_ = 0;
};

}  // namespace memshard
