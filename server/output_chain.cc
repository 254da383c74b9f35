#include "server/output_chain.h"

#include <limits.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "glog/logging.h"

namespace memshard {
namespace {
constexpr int kMaxIov = 256;
}  // namespace

char* OutputChain::Tail(size_t* room) {
  if (buffers_.empty() || tail_used_ == buffers_.back()->capacity()) {
    buffers_.push_back(pool_->Acquire());
    tail_used_ = 0;
  }
  *room = buffers_.back()->capacity() - tail_used_;
  return buffers_.back()->data() + tail_used_;
}

void OutputChain::Append(absl::string_view bytes) {
  pending_ += bytes.size();
  while (!bytes.empty()) {
    size_t room;
    char* dst = Tail(&room);
    size_t n = std::min(room, bytes.size());
    memcpy(dst, bytes.data(), n);
    tail_used_ += n;
    bytes.remove_prefix(n);
    // Extend the last segment when these bytes directly follow it.
    if (segment_count_ > head_) {
      Segment& last = segments_[segment_count_ - 1];
      if (!last.item && last.data + last.size == dst) {
        last.size += n;
        continue;
      }
    }
    PushSegment(dst, n, cache::ItemRef());
  }
}

void OutputChain::PushSegment(const char* data, size_t size,
                              cache::ItemRef item) {
  if (segment_count_ == segment_capacity_) {
    if (segments_ == nullptr) {
      segment_buffer_ = pool_->Acquire();
      segments_ = reinterpret_cast<Segment*>(segment_buffer_->data());
      segment_capacity_ = segment_buffer_->capacity() / sizeof(Segment);
    } else {
      // Rare: a huge multiget still unsent. Move to a bigger heap array.
      size_t capacity = segment_capacity_ * 2;
      auto bigger = std::make_unique<Segment[]>(capacity);
      for (size_t i = head_; i < segment_count_; ++i) {
        bigger[i - head_] = std::move(segments_[i]);
      }
      DestroySegments();
      segment_count_ -= head_;
      head_ = 0;
      heap_segments_ = std::move(bigger);
      segments_ = heap_segments_.get();
      segment_capacity_ = capacity;
    }
  }
  Segment* s = segments_ + segment_count_;
  if (heap_segments_) {
    *s = Segment{data, size, std::move(item)};
  } else {
    new (s) Segment{data, size, std::move(item)};
  }
  ++segment_count_;
}

void OutputChain::AppendItem(cache::ItemRef item, absl::string_view bytes) {
  if (bytes.empty()) return;
  pending_ += bytes.size();
  PushSegment(bytes.data(), bytes.size(), std::move(item));
}

OutputChain::FlushResult OutputChain::Flush(int fd, size_t* written) {
  *written = 0;
  while (pending_ > 0) {
    iovec iov[kMaxIov];
    int count = 0;
    for (size_t i = head_; i < segment_count_ && count < kMaxIov; ++i) {
      iov[count].iov_base = const_cast<char*>(segments_[i].data);
      iov[count].iov_len = segments_[i].size;
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::kBlocked;
      return FlushResult::kError;
    }
    *written += n;
    Advance(static_cast<size_t>(n));
  }
  Clear();
  return FlushResult::kDone;
}

void OutputChain::Advance(size_t n) {
  pending_ -= n;
  while (n > 0) {
    Segment& s = segments_[head_];
    if (n < s.size) {
      s.data += n;
      s.size -= n;
      return;
    }
    n -= s.size;
    s.item = cache::ItemRef();  // drop the reference as soon as it is sent
    ++head_;
  }
}

void OutputChain::DestroySegments() {
  // Pooled arrays hold placement-new'd segments; heap arrays own theirs.
  if (!heap_segments_) {
    for (size_t i = 0; i < segment_count_; ++i) segments_[i].~Segment();
  }
  if (segment_buffer_ != nullptr) {
    pool_->Release(segment_buffer_);
    segment_buffer_ = nullptr;
  }
  heap_segments_.reset();
  segments_ = nullptr;
  segment_capacity_ = 0;
}

void OutputChain::Clear() {
  // Keep nothing: an idle connection holds no memory.
  DestroySegments();
  segment_count_ = 0;
  head_ = 0;
  for (Buffer* b : buffers_) pool_->Release(b);
  buffers_.clear();
  buffers_.shrink_to_fit();
  tail_used_ = 0;
  pending_ = 0;
}

std::string OutputChain::PendingForTest() const {
  std::string out;
  for (size_t i = head_; i < segment_count_; ++i) {
    out.append(segments_[i].data, segments_[i].size);
  }
  return out;
}

}  // namespace memshard
