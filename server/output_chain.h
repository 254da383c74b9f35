#pragma once

// OutputChain: a connection's unsent replies, written with writev.
//
// Thread-safety: none; owned by one connection (or, for the shared chain,
// by one worker) and used on that worker's thread.
//
// Small reply bytes are copied into buffers borrowed from the worker's
// BufferPool. Item values larger than kCopyValueMax are not copied at all:
// the chain references the item's bytes and holds an ItemRef, so the value
// stays alive (by reference count) until it has been written, even if the
// item is replaced or evicted meanwhile. Smaller values are copied: a
// memcpy of a hundred bytes is cheaper than a segment, a reference count
// and one more iovec for the kernel to walk, and a reply of one piece goes
// out with a plain send().
//
// Memory: a connection's own chain (Memory::kRelease) holds nothing while
// empty. A worker's shared chain (Memory::kKeep) keeps one buffer and its
// segment array between replies; a connection composes into it, and only
// a reply the socket did not take whole moves (TakeFrom) into a chain of
// the connection's own.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "core/buffer_pool.h"
#include "server/cache/store.h"

namespace memshard {

class OutputChain {
 public:
  // Values up to this many bytes (with their "\r\n") are copied.
  static constexpr size_t kCopyValueMax = 512;

  enum class Memory : uint8_t { kRelease, kKeep };

  explicit OutputChain(BufferPool* pool, Memory memory = Memory::kRelease)
      : pool_(pool), keep_(memory == Memory::kKeep) {}
  ~OutputChain() { ReleaseAll(); }
  OutputChain(const OutputChain&) = delete;
  OutputChain& operator=(const OutputChain&) = delete;

  // Copies `bytes` to the end of the chain.
  void Append(absl::string_view bytes) {
    // The usual case, inline: the bytes fit after the last copied piece.
    if (tail_is_last_ &&
        bytes.size() <= static_cast<size_t>(tail_end_ - tail_)) {
      memcpy(tail_, bytes.data(), bytes.size());
      tail_ += bytes.size();
      segments_[segment_count_ - 1].size += bytes.size();
      pending_ += bytes.size();
      return;
    }
    AppendSlow(bytes);
  }
  // Composing in place: room for up to `max` bytes at the end of the chain,
  // to be followed by CommitAppend(n) with the n <= max bytes written.
  // Null if `max` exceeds a pooled buffer (write elsewhere and Append()).
  char* PrepareAppend(size_t max);
  void CommitAppend(size_t n);
  // Appends `bytes`, which `item` keeps alive: referenced without copying,
  // or copied if small (see kCopyValueMax).
  void AppendItem(cache::ItemRef item, absl::string_view bytes);

  bool empty() const { return pending_ == 0; }
  size_t pending_bytes() const { return pending_; }

  enum class FlushResult { kDone, kBlocked, kError };
  // Writes as much as the socket takes. `*written` gets the bytes sent.
  FlushResult Flush(int fd, size_t* written);

  // Drops everything unsent; returns all memory (a kKeep chain keeps one
  // buffer and its segment array).
  void Clear();

  // Moves `other`'s unsent bytes, references and memory here (same pool);
  // this chain must be empty, and `other` is left empty and holding
  // nothing.
  void TakeFrom(OutputChain* other);

  // Test hooks: the bytes not yet written, concatenated; and how many
  // pieces they are in.
  std::string PendingForTest() const;
  size_t SegmentsForTest() const { return segment_count_ - head_; }

 private:
  struct Segment {
    const char* data;
    size_t size;
    cache::ItemRef item;  // empty for copied bytes
  };
  void AppendSlow(absl::string_view bytes);
  // Copied bytes go here; a new buffer is borrowed when it is full.
  char* Tail(size_t* room);
  void PushSegment(const char* data, size_t size, cache::ItemRef item);
  void Advance(size_t n);
  // Destroys the segments; frees their array unless `keep_array`.
  void DestroySegments(bool keep_array);
  void ReleaseAll();

  BufferPool* const pool_;
  // The segment array lives in a pooled buffer too (no malloc per request);
  // a chain with more segments than fit moves to a heap array.
  Buffer* segment_buffer_ = nullptr;
  std::unique_ptr<Segment[]> heap_segments_;
  Segment* segments_ = nullptr;
  size_t segment_capacity_ = 0;
  size_t segment_count_ = 0;
  size_t head_ = 0;  // first unsent segment
  absl::InlinedVector<Buffer*, 2> buffers_;
  // Free space of buffers_.back(): [tail_, tail_end_).
  char* tail_ = nullptr;
  char* tail_end_ = nullptr;
  // The last unsent segment is copied bytes ending at tail_ (so more
  // copied bytes just extend it).
  bool tail_is_last_ = false;
  const bool keep_;  // Memory::kKeep
  size_t pending_ = 0;
};

}  // namespace memshard
