// Debian's libmemcached (libmemcached-dev) in text (ascii) mode against the
// real memshard binary, and against memcached to prove the expectations:
// every client call a C/C++ application would make over the text protocol.

#include <libmemcached/memcached.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/libmemcached_client.h"
#include "testing/peer.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class LibmemcachedTest : public PeerTest {
 protected:
  LibmemcachedTest() : PeerTest({"--workers=2"}) {}

  void SetUp() override {
    PeerTest::SetUp();
    if (server_ == nullptr) return;
    memc_ = NewClient();
  }

  Memc NewClient(bool noreply = false) {
    return NewMemc(server_->port(), MemcProtocol::kText, noreply);
  }

  memcached_return_t Set(const std::string& key, const std::string& value,
                         uint32_t flags = 0, time_t exptime = 0) {
    return memcached_set(memc_.get(), key.data(), key.size(), value.data(),
                         value.size(), exptime, flags);
  }

  // The value, or "<miss>" / "<error: ...>".
  std::string Get(const std::string& key, uint32_t* flags = nullptr,
                  memcached_st* memc = nullptr) {
    size_t length = 0;
    uint32_t item_flags = 0;
    memcached_return_t rc;
    char* value =
        memcached_get(memc != nullptr ? memc : memc_.get(), key.data(),
                      key.size(), &length, &item_flags, &rc);
    if (flags != nullptr) *flags = item_flags;
    if (rc == MEMCACHED_NOTFOUND) return "<miss>";
    if (rc != MEMCACHED_SUCCESS) {
      free(value);
      return absl::StrCat("<error: ", memcached_strerror(memc_.get(), rc), ">");
    }
    std::string out(value != nullptr ? value : "", length);
    free(value);
    return out;
  }

  struct Hit {
    std::string value;
    uint32_t flags;
    uint64_t cas;
  };
  // mget: key -> hit.
  std::map<std::string, Hit> MultiGet(const std::vector<std::string>& keys) {
    std::vector<const char*> key_ptrs;
    std::vector<size_t> key_lengths;
    for (const std::string& key : keys) {
      key_ptrs.push_back(key.data());
      key_lengths.push_back(key.size());
    }
    std::map<std::string, Hit> hits;
    EXPECT_EQ(memcached_mget(memc_.get(), key_ptrs.data(), key_lengths.data(),
                             keys.size()),
              MEMCACHED_SUCCESS);
    memcached_return_t rc;
    while (memcached_result_st* result =
               memcached_fetch_result(memc_.get(), nullptr, &rc)) {
      hits[std::string(memcached_result_key_value(result),
                       memcached_result_key_length(result))] =
          Hit{std::string(memcached_result_value(result),
                          memcached_result_length(result)),
              memcached_result_flags(result), memcached_result_cas(result)};
      memcached_result_free(result);
    }
    EXPECT_TRUE(rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND)
        << memcached_strerror(memc_.get(), rc);
    return hits;
  }

  Memc memc_;
};

INSTANTIATE_TEST_SUITE_P(Peers, LibmemcachedTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

TEST_P(LibmemcachedTest, SetGetFlagsAndBinaryValues) {
  EXPECT_EQ(Get("k"), "<miss>");
  EXPECT_EQ(Set("k", "v1", 42), MEMCACHED_SUCCESS);
  uint32_t flags = 0;
  EXPECT_EQ(Get("k", &flags), "v1");
  EXPECT_EQ(flags, 42u);
  const std::string binary("\r\nEND\r\n\0\xff", 9);
  EXPECT_EQ(Set("bin", binary, 4294967295u), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("bin", &flags), binary);
  EXPECT_EQ(flags, 4294967295u);
  EXPECT_EQ(Set("empty", ""), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("empty"), "");
  std::string big(900 * 1024, 'b');
  EXPECT_EQ(Set("big", big), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("big"), big);
  // Over the 1 MiB item limit: refused by the server.
  EXPECT_NE(Set("huge", std::string(2 << 20, 'h')), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("huge"), "<miss>");
  // The client itself refuses keys over 250 bytes.
  EXPECT_EQ(Set(std::string(251, 'k'), "x"), MEMCACHED_BAD_KEY_PROVIDED);
  EXPECT_EQ(Set(std::string(250, 'k'), "x"), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get(std::string(250, 'k')), "x");
}

TEST_P(LibmemcachedTest, MultiGet) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(absl::StrCat("key", i));
    if (i % 2 == 0) {
      ASSERT_EQ(Set(keys.back(), absl::StrCat("value", i), i),
                MEMCACHED_SUCCESS);
    }
  }
  std::map<std::string, Hit> hits = MultiGet(keys);
  ASSERT_EQ(hits.size(), 100u);
  for (int i = 0; i < 200; i += 2) {
    const Hit& hit = hits[absl::StrCat("key", i)];
    EXPECT_EQ(hit.value, absl::StrCat("value", i));
    EXPECT_EQ(hit.flags, static_cast<uint32_t>(i));
    EXPECT_NE(hit.cas, 0u);
  }
  EXPECT_TRUE(MultiGet({"nope1", "nope2"}).empty());
}

TEST_P(LibmemcachedTest, AddReplaceAppendPrepend) {
  memcached_st* m = memc_.get();
  EXPECT_EQ(memcached_add(m, "a", 1, "1", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_add(m, "a", 1, "2", 1, 0, 0), MEMCACHED_NOTSTORED);
  EXPECT_EQ(memcached_replace(m, "a", 1, "3", 1, 0, 7), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_replace(m, "z", 1, "3", 1, 0, 0), MEMCACHED_NOTSTORED);
  EXPECT_EQ(memcached_append(m, "a", 1, "4", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_prepend(m, "a", 1, "2", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_append(m, "z", 1, "x", 1, 0, 0), MEMCACHED_NOTSTORED);
  EXPECT_EQ(memcached_prepend(m, "z", 1, "x", 1, 0, 0), MEMCACHED_NOTSTORED);
  uint32_t flags = 0;
  EXPECT_EQ(Get("a", &flags), "234");
  EXPECT_EQ(flags, 7u);
  EXPECT_EQ(Get("z"), "<miss>");
}

TEST_P(LibmemcachedTest, Cas) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set("c", "one"), MEMCACHED_SUCCESS);
  const uint64_t cas = MultiGet({"c"})["c"].cas;
  ASSERT_NE(cas, 0u);
  EXPECT_EQ(memcached_cas(m, "c", 1, "two", 3, 0, 0, cas + 1),
            MEMCACHED_DATA_EXISTS);
  EXPECT_EQ(memcached_cas(m, "c", 1, "two", 3, 0, 0, cas), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_cas(m, "c", 1, "six", 3, 0, 0, cas),
            MEMCACHED_DATA_EXISTS);
  EXPECT_EQ(memcached_cas(m, "nope", 4, "x", 1, 0, 0, cas), MEMCACHED_NOTFOUND);
  EXPECT_EQ(Get("c"), "two");
  EXPECT_NE(MultiGet({"c"})["c"].cas, cas);
}

TEST_P(LibmemcachedTest, IncrementDecrement) {
  memcached_st* m = memc_.get();
  uint64_t value = 0;
  EXPECT_EQ(memcached_increment(m, "n", 1, 1, &value), MEMCACHED_NOTFOUND);
  ASSERT_EQ(Set("n", "10"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_increment(m, "n", 1, 5, &value), MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 15u);
  EXPECT_EQ(memcached_decrement(m, "n", 1, 100, &value), MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 0u);
  ASSERT_EQ(Set("w", "18446744073709551615"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_increment(m, "w", 1, 2, &value), MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 1u);
  ASSERT_EQ(Set("t", "text"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_increment(m, "t", 1, 1, &value), MEMCACHED_CLIENT_ERROR);
  // The connection is still usable after the error.
  EXPECT_EQ(Get("t"), "text");
}

TEST_P(LibmemcachedTest, DeleteTouchExistAndExpiry) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set("d", "x"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_exist(m, "d", 1), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_delete(m, "d", 1, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_delete(m, "d", 1, 0), MEMCACHED_NOTFOUND);
  EXPECT_EQ(memcached_exist(m, "d", 1), MEMCACHED_NOTFOUND);
  EXPECT_EQ(Get("d"), "<miss>");

  ASSERT_EQ(Set("t", "x"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_touch(m, "t", 1, 100), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_touch(m, "nope", 4, 100), MEMCACHED_NOTFOUND);
  EXPECT_EQ(Get("t"), "x");
  EXPECT_EQ(memcached_touch(m, "t", 1, -1), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("t"), "<miss>");

  // A TTL of 3 and a sleep 2.5 s past it: memcached's once-a-second clock
  // can fall behind and catch up at once on a loaded machine.
  ASSERT_EQ(Set("e", "x", 0, 3), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("e"), "x");
  absl::SleepFor(absl::Milliseconds(5500));
  EXPECT_EQ(Get("e"), "<miss>");
}

TEST_P(LibmemcachedTest, FlushVersionVerbosityStats) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set("f1", "x"), MEMCACHED_SUCCESS);
  ASSERT_EQ(Set("f2", "y"), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("f1"), "x");
  EXPECT_EQ(memcached_flush(m, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("f1"), "<miss>");
  EXPECT_EQ(Get("f2"), "<miss>");

  EXPECT_EQ(memcached_version(m), MEMCACHED_SUCCESS);
  const memcached_instance_st* instance =
      memcached_server_instance_by_position(m, 0);
  EXPECT_EQ(memcached_server_major_version(instance), 1);

  EXPECT_EQ(memcached_verbosity(m, 1), MEMCACHED_SUCCESS);

  memcached_return_t rc;
  memcached_stat_st* stats = memcached_stat(m, nullptr, &rc);
  ASSERT_EQ(rc, MEMCACHED_SUCCESS);
  ASSERT_NE(stats, nullptr);
  EXPECT_EQ(stats->pid, static_cast<pid_t>(server_->pid()));
  EXPECT_GE(stats->get_hits, 1u);
  EXPECT_GE(stats->get_misses, 2u);
  EXPECT_EQ(stats->limit_maxbytes, 64u << 20);
  char* curr_items = memcached_stat_get_value(m, stats, "curr_items", &rc);
  EXPECT_EQ(rc, MEMCACHED_SUCCESS);
  ASSERT_NE(curr_items, nullptr);
  EXPECT_STREQ(curr_items, "0");  // flushed items are reclaimed lazily
  free(curr_items);
  memcached_stat_free(m, stats);
}

TEST_P(LibmemcachedTest, NoreplyAndBufferedRequests) {
  Memc quiet = NewClient(/*noreply=*/true);
  for (int i = 0; i < 100; ++i) {
    const std::string key = absl::StrCat("q", i);
    ASSERT_EQ(memcached_set(quiet.get(), key.data(), key.size(), "v", 1, 0, 0),
              MEMCACHED_SUCCESS);
  }
  EXPECT_EQ(memcached_delete(quiet.get(), "q0", 2, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_flush_buffers(quiet.get()), MEMCACHED_SUCCESS);
  // A get on the quiet connection is answered after all its writes...
  EXPECT_EQ(Get("q1", nullptr, quiet.get()), "v");
  // ... which are then visible to another connection.
  EXPECT_EQ(Get("q99"), "v");
  EXPECT_EQ(Get("q0"), "<miss>");

  Memc buffered = NewClient();
  memcached_behavior_set(buffered.get(), MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
  for (int i = 0; i < 100; ++i) {
    const std::string key = absl::StrCat("b", i);
    ASSERT_EQ(
        memcached_set(buffered.get(), key.data(), key.size(), "w", 1, 0, 0),
        MEMCACHED_BUFFERED);
  }
  EXPECT_EQ(memcached_flush_buffers(buffered.get()), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get("b99", nullptr, buffered.get()), "w");
}

}  // namespace
}  // namespace memshard
