#pragma once

// InputBuffer: a connection's unparsed input.
//
// Thread-safety: none; owned by one connection on its worker's thread.
//
// Holds no memory while empty. It borrows a fixed-size buffer from the
// worker's BufferPool when input arrives, and gives it back as soon as every
// byte has been consumed. A request larger than a pooled buffer (a big value)
// moves the bytes to a heap block, freed when drained.
//
// Growth follows the bytes that arrived, not the bytes a request announced:
// only a full buffer grows, into uninitialised memory (so only pages bytes
// were read into become resident). It doubles, or toward a request whose
// size Expect() gave it grows by up to kMaxAhead past what it holds, never
// past that size. So a client that announces a 1 MB value and trickles it
// keeps the pooled buffer until it has sent a buffer's worth, and never
// holds memory far beyond what it sent; a value really arriving takes a few
// steps (a 1 MB one: 16 KiB, 272 KiB, 544 KiB, 1 MB), with linear copying.
// Reserve() allocates at once, for peers trusted with their sizes.
//
// A worker's shared read buffer (WhenDrained::kKeep) keeps its pooled buffer
// when drained instead: every connection reads into it, and only a
// connection left with an incomplete request takes the bytes over
// (TakeFrom), so the steady path borrows and returns nothing.
//
// Lifetime: views returned by readable() are valid until the next call to
// WritableSpace(), Reserve(), Consume() or Release(). TakeFrom() moves the
// memory, not the bytes: views into `other` stay valid, now into this.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/buffer_pool.h"

namespace memshard {

class InputBuffer {
 public:
  enum class WhenDrained : uint8_t { kRelease, kKeep };
  // How far past the bytes held a full buffer may grow at once toward a
  // request of known size (Expect()).
  static constexpr size_t kMaxAhead = 256 * 1024;

  explicit InputBuffer(BufferPool* pool,
                       WhenDrained when_drained = WhenDrained::kRelease)
      : pool_(pool), keep_(when_drained == WhenDrained::kKeep) {}
  ~InputBuffer() { Release(); }
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;

  // Free space to read into (never empty): borrows a buffer if none is held,
  // and moves unconsumed bytes to the front when the tail is full.
  absl::Span<char> WritableSpace();
  // Marks `n` bytes of the space from WritableSpace() as filled.
  void Commit(size_t n) { end_ += n; }

  absl::string_view readable() const {
    return absl::string_view(data_ + begin_, end_ - begin_);
  }
  bool empty() const { return begin_ == end_; }
  // Drops `n` bytes from the front; returns the buffer when drained.
  void Consume(size_t n);

  // Makes room for a request of `total` bytes starting at the front, now.
  void Reserve(size_t total);
  // Notes that the request at the front is `total` bytes long (0: unknown)
  // without allocating for it: WritableSpace() then grows no further than
  // needed to hold it. Forgotten when bytes are consumed.
  void Expect(size_t total) { expect_ = total; }

  // Returns all memory (drops unconsumed bytes).
  void Release();

  // Moves `other`'s bytes and memory here (same pool); `other` is left
  // empty, holding nothing. Whatever this buffer held is released first.
  void TakeFrom(InputBuffer* other);

  bool holds_memory() const { return data_ != nullptr; }
  size_t capacity() const { return capacity_; }

 private:
  void Compact();
  // Moves the unconsumed bytes to a heap block of `capacity` bytes.
  void Grow(size_t capacity);

  BufferPool* const pool_;
  Buffer* pooled_ = nullptr;      // set when data_ is a pooled buffer
  std::unique_ptr<char[]> heap_;  // set when data_ is a heap block
  char* data_ = nullptr;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t expect_ = 0;  // Expect(): the front request's size, if known
  const bool keep_;    // WhenDrained::kKeep
};

}  // namespace memshard
