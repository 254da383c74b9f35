// Pipelined requests (scenario S2: many requests in one write) against the
// real memshard binary and Debian's memcached. memshard looks ahead over the
// requests it has read and prefetches the keys of the retrievals among them
// (Connection::LookAhead); that must stay a hint. So: requests in one write
// execute in order (a set between two gets applies before the later get),
// and every request's reply is byte for byte what it gets when sent alone.
// The memcached run proves the expectations are memcached's behaviour.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/peer.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class PipelineOrderTest : public ConnectedPeerTest {
 protected:
  PipelineOrderTest() : ConnectedPeerTest({"--workers=1"}) {}

  // Sends `requests` in one write, then "mn", and returns every reply
  // before MN.
  std::string Pipelined(const std::vector<std::string>& requests) {
    std::string bytes;
    for (const std::string& r : requests) bytes += r;
    return Exchange(bytes);
  }

  // Sends `requests` one at a time, each followed by "mn" and answered
  // before the next is sent; returns the replies concatenated.
  std::string OneAtATime(const std::vector<std::string>& requests) {
    std::string replies;
    for (const std::string& r : requests) replies += Exchange(r);
    return replies;
  }

  std::string Exchange(const std::string& bytes) {
    if (!client_->Send(absl::StrCat(bytes, "mn\r\n"))) return "";
    std::string reply = client_->ReadUntil("MN\r\n");
    if (reply.size() >= 4) reply.resize(reply.size() - 4);
    return reply;
  }
};

INSTANTIATE_TEST_SUITE_P(Peers, PipelineOrderTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

TEST_P(PipelineOrderTest, SetBetweenGetsAppliesInOrder) {
  ASSERT_EQ(client_->Set("a", "old"), "STORED");
  EXPECT_EQ(Pipelined({"get a\r\n", "set a 0 0 3\r\nnew\r\n", "get a\r\n",
                       "delete a\r\n", "get a\r\n", "mg a v\r\n",
                       "ms a 4\r\nnewr\r\n", "mg a v\r\n", "gat 0 a\r\n"}),
            "VALUE a 0 3\r\nold\r\nEND\r\n"
            "STORED\r\n"
            "VALUE a 0 3\r\nnew\r\nEND\r\n"
            "DELETED\r\n"
            "END\r\n"
            "EN\r\n"
            "HD\r\n"
            "VA 4\r\nnewr\r\n"
            "VALUE a 0 4\r\nnewr\r\nEND\r\n");
}

// A retrieval of no keys ("gat 10" alone is one, answered END) with more
// requests behind it: the look-ahead once read its missing first key (the
// connection fuzzer, under UBSan). First thing on a fresh server, so the
// worker's request holds no keys from before.
TEST_P(PipelineOrderTest, RetrievalWithoutKeysBeforeMore) {
  EXPECT_EQ(Pipelined({"gat 10\r\n", "set a 0 0 1\r\nx\r\n", "get a\r\n",
                       "gats 5\r\n", "get a\r\n"}),
            "END\r\n"
            "STORED\r\n"
            "VALUE a 0 1\r\nx\r\nEND\r\n"
            "END\r\n"
            "VALUE a 0 1\r\nx\r\nEND\r\n");
}

TEST_P(PipelineOrderTest, LongPipelineMatchesOneAtATime) {
  // More requests than one look-ahead covers (16), mixing hits, misses, a
  // key that is too long, multigets, meta gets and other commands; keys
  // change value, vanish and reappear along the way.
  std::vector<std::string> setup;
  std::vector<std::string> requests;
  for (int i = 0; i < 40; ++i) {
    const std::string key = absl::StrCat("key", i);
    if (i % 5 == 4) {
      setup.push_back(absl::StrCat("delete ", key, "\r\n"));
    } else {
      const std::string value = absl::StrCat("value-", i);
      setup.push_back(absl::StrCat("set ", key, " ", i, " 0 ", value.size(),
                                   "\r\n", value, "\r\n"));
    }
  }
  const std::string too_long(251, 'x');
  for (int i = 0; i < 40; ++i) {
    requests.push_back(absl::StrCat("get key", i, "\r\n"));
    switch (i % 8) {
      case 1:
        requests.push_back(absl::StrCat("get ", too_long, "\r\n"));
        break;
      case 2:
        requests.push_back(absl::StrCat("set key", i + 1, " 7 0 3\r\nnew\r\n"));
        break;
      case 3:
        requests.push_back(absl::StrCat("delete key", i + 1, "\r\n"));
        break;
      case 4:
        requests.push_back(absl::StrCat("mg key", i + 2, " v f k\r\n"));
        break;
      case 5:
        requests.push_back(absl::StrCat("get key", i, " key", i + 1,
                                        " nokey key", i + 3, "\r\n"));
        break;
      case 6:
        requests.push_back("bogus command\r\n");
        requests.push_back(absl::StrCat("gat 0 key", i + 1, "\r\n"));
        break;
      case 7:
        requests.push_back(absl::StrCat("incr key", i, " 1\r\n"));
        requests.push_back(
            absl::StrCat("append key", i + 1, " 0 0 2\r\n++\r\n"));
        break;
      default:
        requests.push_back(absl::StrCat("mg nokey", i, " v\r\n"));
        break;
    }
  }
  Pipelined(setup);
  const std::string pipelined = Pipelined(requests);
  Pipelined(setup);
  const std::string alone = OneAtATime(requests);
  EXPECT_EQ(pipelined, alone);
  // Sanity: the stream did hit and miss.
  EXPECT_NE(pipelined.find("VALUE key0 0 7\r\nvalue-0\r\n"), std::string::npos)
      << pipelined;
  EXPECT_NE(pipelined.find("CLIENT_ERROR"), std::string::npos) << pipelined;
  EXPECT_NE(pipelined.find("VALUE key3 7 3\r\nnew\r\n"), std::string::npos)
      << pipelined;
}

TEST_P(PipelineOrderTest, SplitAndLongPipelines) {
  ASSERT_EQ(client_->Set("a", "1"), "STORED");
  ASSERT_EQ(client_->Set("b", "22"), "STORED");
  // The last request arrives in pieces: the look-ahead sees it incomplete.
  ASSERT_TRUE(client_->Send("get a\r\nget b\r\nget a"));
  const std::string first =
      "VALUE a 0 1\r\n1\r\nEND\r\nVALUE b 0 2\r\n22\r\nEND\r\n";
  EXPECT_EQ(client_->ReadExactly(first.size()), first);
  ASSERT_TRUE(client_->Send(" b\r\n"));
  const std::string last = "VALUE a 0 1\r\n1\r\nVALUE b 0 2\r\n22\r\nEND\r\n";
  EXPECT_EQ(client_->ReadExactly(last.size()), last);
  // More requests in one write than a turn answers (the rest on later
  // turns), with sets every so often.
  std::vector<std::string> requests;
  std::string expected;
  for (int i = 0; i < 3000; ++i) {
    if (i % 97 == 0) {
      const std::string value = absl::StrCat(i);
      requests.push_back(
          absl::StrCat("set b 0 0 ", value.size(), "\r\n", value, "\r\n"));
      absl::StrAppend(&expected, "STORED\r\n");
      requests.push_back("get b\r\n");
      absl::StrAppend(&expected, "VALUE b 0 ", value.size(), "\r\n", value,
                      "\r\nEND\r\n");
    } else if (i % 3 == 0) {
      requests.push_back("get nokey\r\n");
      absl::StrAppend(&expected, "END\r\n");
    } else {
      requests.push_back("get a\r\n");
      absl::StrAppend(&expected, "VALUE a 0 1\r\n1\r\nEND\r\n");
    }
  }
  EXPECT_EQ(Pipelined(requests), expected);
}

// Binary requests: header fields in network order.
std::string BinaryPacket(uint8_t opcode, absl::string_view key,
                         absl::string_view extras = "",
                         absl::string_view value = "") {
  std::string packet(24, '\0');
  packet[0] = static_cast<char>(0x80);
  packet[1] = static_cast<char>(opcode);
  packet[2] = static_cast<char>(key.size() >> 8);
  packet[3] = static_cast<char>(key.size());
  packet[4] = static_cast<char>(extras.size());
  const size_t body = extras.size() + key.size() + value.size();
  packet[8] = static_cast<char>(body >> 24);
  packet[9] = static_cast<char>(body >> 16);
  packet[10] = static_cast<char>(body >> 8);
  packet[11] = static_cast<char>(body);
  packet[15] = static_cast<char>(opcode);  // opaque: tells replies apart
  return absl::StrCat(packet, extras, key, value);
}

constexpr uint8_t kGet = 0x00, kSet = 0x01, kDelete = 0x04, kGetQ = 0x09,
                  kNoop = 0x0a, kGetK = 0x0c, kGetKQ = 0x0d;

// Every response up to and including the noop's, CAS fields zeroed (they
// differ from run to run).
std::string ReadUntilNoop(BlockingClient& client) {
  std::string all;
  for (;;) {
    std::string header = client.ReadExactly(24);
    if (header.size() != 24) return all + "<short read>";
    const size_t body = static_cast<uint8_t>(header[8]) << 24 |
                        static_cast<uint8_t>(header[9]) << 16 |
                        static_cast<uint8_t>(header[10]) << 8 |
                        static_cast<uint8_t>(header[11]);
    for (int i = 16; i < 24; ++i) header[i] = '\0';
    all += header;
    all += client.ReadExactly(body);
    if (static_cast<uint8_t>(header[1]) == kNoop) return all;
  }
}

TEST_P(PipelineOrderTest, BinaryPipelineMatchesOneAtATime) {
  const std::string set_extras(8, '\0');  // flags, exptime
  std::vector<std::string> setup;
  std::vector<std::string> requests;
  for (int i = 0; i < 24; ++i) {
    const std::string key = absl::StrCat("bkey", i);
    setup.push_back(
        i % 3 == 2 ? BinaryPacket(kDelete, key)
                   : BinaryPacket(kSet, key, set_extras, absl::StrCat("v", i)));
  }
  for (int i = 0; i < 24; ++i) {
    const std::string key = absl::StrCat("bkey", i);
    const uint8_t gets[] = {kGet, kGetQ, kGetK, kGetKQ};
    requests.push_back(BinaryPacket(gets[i % 4], key));
    if (i % 6 == 1) {
      requests.push_back(BinaryPacket(kSet, absl::StrCat("bkey", i + 1),
                                      set_extras, "changed"));
    } else if (i % 6 == 3) {
      requests.push_back(BinaryPacket(kDelete, absl::StrCat("bkey", i + 1)));
    }
  }
  const std::string noop = BinaryPacket(kNoop, "");
  auto run = [&](const std::vector<std::string>& packets, bool pipelined) {
    std::string replies;
    if (pipelined) {
      std::string bytes;
      for (const std::string& p : packets) bytes += p;
      EXPECT_TRUE(client_->Send(bytes + noop));
      return ReadUntilNoop(*client_);
    }
    for (const std::string& p : packets) {
      EXPECT_TRUE(client_->Send(p + noop));
      replies += ReadUntilNoop(*client_);
    }
    return replies;
  };
  run(setup, true);
  const std::string pipelined = run(requests, true);
  run(setup, true);
  std::string alone = run(requests, false);
  // One noop per request there: keep only the last.
  std::string without_noops;
  for (size_t pos = 0; pos < alone.size();) {
    const size_t body = static_cast<uint8_t>(alone[pos + 8]) << 24 |
                        static_cast<uint8_t>(alone[pos + 9]) << 16 |
                        static_cast<uint8_t>(alone[pos + 10]) << 8 |
                        static_cast<uint8_t>(alone[pos + 11]);
    if (static_cast<uint8_t>(alone[pos + 1]) != kNoop) {
      without_noops += alone.substr(pos, 24 + body);
    }
    pos += 24 + body;
  }
  EXPECT_EQ(pipelined, absl::StrCat(without_noops,
                                    pipelined.substr(pipelined.size() - 24)));
  EXPECT_NE(pipelined.find("changed"), std::string::npos);
}

// Requests of many connections in one epoll batch: memshard reads every
// ready connection before executing any (ConnectionTable::PreReadSpace) and
// prefetches the keys it read. Each connection's replies must still be
// exactly its own, whatever the read-ahead took of its bytes: small
// requests, and values larger than one read (16 KiB) or than what is left
// of the read-ahead arena, whose rest is read in the connection's turn.
TEST_P(PipelineOrderTest, ConnectionsReadAheadInOneBatchAnswerIntact) {
  constexpr int kConnections = 40;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < kConnections; ++i) {
    auto client = BlockingClient::ConnectTcp(server_->port());
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(*std::move(client));
  }
  auto value_of = [](int i, int round) {
    return std::string(i % 3 == 0 ? 20000 : 100,
                       static_cast<char>('a' + (i + round) % 26));
  };
  auto block = [](const std::string& key, const std::string& value) {
    return absl::StrCat("VALUE ", key, " 0 ", value.size(), "\r\n", value,
                        "\r\n");
  };
  for (int round = 0; round < 3; ++round) {
    // Every connection's requests go out before any reply is read.
    for (int i = 0; i < kConnections; ++i) {
      const std::string key = absl::StrCat("batch", i);
      const std::string value = value_of(i, round);
      ASSERT_TRUE(clients[i]->Send(
          absl::StrCat("get ", key, "\r\nset ", key, " 0 0 ", value.size(),
                       "\r\n", value, "\r\nget ", key, "\r\nmn\r\n")));
    }
    for (int i = 0; i < kConnections; ++i) {
      const std::string key = absl::StrCat("batch", i);
      const std::string expected = absl::StrCat(
          round > 0 ? block(key, value_of(i, round - 1)) : "", "END\r\n",
          "STORED\r\n", block(key, value_of(i, round)), "END\r\nMN\r\n");
      const std::string reply = clients[i]->ReadUntil("MN\r\n");
      EXPECT_EQ(reply.size(), expected.size()) << "connection " << i;
      EXPECT_TRUE(reply == expected) << "connection " << i << " round " << round
                                     << ": " << reply.substr(0, 200);
    }
  }
}

}  // namespace
}  // namespace memshard
