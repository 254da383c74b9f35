#include "tools/loadgen/protocol.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace loadgen {
namespace {

TEST(TextProtocolTest, EncodesGetMultigetAndSet) {
  TextProtocol text;
  std::string out;
  text.AppendGet({"k1"}, &out);
  text.AppendGet({"a", "bb", "ccc"}, &out);
  text.AppendSet("key", "hello", &out);
  EXPECT_EQ(out, "get k1\r\nget a bb ccc\r\nset key 0 0 5\r\nhello\r\n");
}

TEST(TextProtocolTest, MakeProtocolKnowsText) {
  ASSERT_TRUE(MakeProtocol("text").ok());
  EXPECT_EQ((*MakeProtocol("text"))->name(), "text");
  EXPECT_FALSE(MakeProtocol("binary").ok());
}

struct Case {
  std::string bytes;
  ReplyKind kind;
  std::vector<std::string> keys;
  std::vector<std::string> data;
};

std::vector<Case> Cases() {
  return {
      {"END\r\n", ReplyKind::kValues, {}, {}},
      {"VALUE k1 0 5\r\nhello\r\nEND\r\n",
       ReplyKind::kValues,
       {"k1"},
       {"hello"}},
      // gets-style cas; data containing "\r\n" and "END" must not confuse.
      {"VALUE a 3 7 99\r\nx\r\nEND\r\r\nVALUE bb 0 0\r\n\r\nEND\r\n",
       ReplyKind::kValues,
       {"a", "bb"},
       {"x\r\nEND\r", ""}},
      {"STORED\r\n", ReplyKind::kStored, {}, {}},
      {"NOT_STORED\r\n", ReplyKind::kNotStored, {}, {}},
      {"EXISTS\r\n", ReplyKind::kNotStored, {}, {}},
      {"ERROR\r\n", ReplyKind::kError, {}, {}},
      {"CLIENT_ERROR bad data chunk\r\n", ReplyKind::kClientError, {}, {}},
      {"SERVER_ERROR out of memory storing object\r\n",
       ReplyKind::kServerError,
       {},
       {}},
      {"VERSION 1.6.18\r\n", ReplyKind::kOther, {}, {}},
  };
}

void ExpectMatches(const Reply& reply, const Case& c) {
  EXPECT_EQ(reply.kind, c.kind);
  ASSERT_EQ(reply.values.size(), c.keys.size());
  for (size_t i = 0; i < c.keys.size(); ++i) {
    EXPECT_EQ(std::string(reply.values[i].key), c.keys[i]);
    EXPECT_EQ(std::string(reply.values[i].data), c.data[i]);
  }
}

TEST(TextProtocolTest, ParsesEachReplyKind) {
  TextProtocol text;
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.bytes);
    Reply reply;
    size_t consumed = 0;
    ASSERT_EQ(text.ParseReply(c.bytes, &consumed, &reply), ParseStatus::kOk);
    EXPECT_EQ(consumed, c.bytes.size());
    ExpectMatches(reply, c);
  }
}

TEST(TextProtocolTest, ParsesFlagsOfValues) {
  TextProtocol text;
  Reply reply;
  size_t consumed;
  ASSERT_EQ(text.ParseReply("VALUE k 4294967295 1\r\nz\r\nEND\r\n", &consumed,
                            &reply),
            ParseStatus::kOk);
  EXPECT_EQ(reply.values[0].flags, 4294967295u);
}

// Every proper prefix of a reply is incomplete and consumes nothing; the
// whole reply parses. This is what a reply split across reads looks like.
TEST(TextProtocolTest, EveryPrefixIsIncomplete) {
  TextProtocol text;
  for (const Case& c : Cases()) {
    for (size_t cut = 0; cut < c.bytes.size(); ++cut) {
      SCOPED_TRACE(c.bytes.substr(0, cut));
      Reply reply;
      size_t consumed = 123;
      ASSERT_EQ(text.ParseReply(absl::string_view(c.bytes).substr(0, cut),
                                &consumed, &reply),
                ParseStatus::kIncomplete);
      EXPECT_EQ(consumed, 0u);
    }
  }
}

TEST(TextProtocolTest, ConsumesOneReplyAtATimeFromAStream) {
  TextProtocol text;
  std::string stream;
  for (const Case& c : Cases()) stream += c.bytes;
  absl::string_view rest = stream;
  for (const Case& c : Cases()) {
    Reply reply;
    size_t consumed = 0;
    ASSERT_EQ(text.ParseReply(rest, &consumed, &reply), ParseStatus::kOk);
    ExpectMatches(reply, c);
    rest.remove_prefix(consumed);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(TextProtocolTest, RejectsUnframeableBytes) {
  TextProtocol text;
  Reply reply;
  size_t consumed;
  // Data block not followed by "\r\n".
  EXPECT_EQ(
      text.ParseReply("VALUE k 0 2\r\nabcd\r\nEND\r\n", &consumed, &reply),
      ParseStatus::kInvalid);
  EXPECT_EQ(text.ParseReply("VALUE k 0 x\r\n", &consumed, &reply),
            ParseStatus::kInvalid);
  EXPECT_EQ(text.ParseReply("VALUE k\r\n", &consumed, &reply),
            ParseStatus::kInvalid);
  EXPECT_EQ(text.ParseReply(std::string(5000, 'x'), &consumed, &reply),
            ParseStatus::kInvalid);
}

TEST(TextProtocolTest, ErrorAfterValuesEndsTheReply) {
  TextProtocol text;
  Reply reply;
  size_t consumed;
  const std::string bytes = "VALUE k 0 1\r\nv\r\nSERVER_ERROR oops\r\nEND\r\n";
  ASSERT_EQ(text.ParseReply(bytes, &consumed, &reply), ParseStatus::kOk);
  EXPECT_EQ(reply.kind, ReplyKind::kServerError);
  EXPECT_EQ(consumed, bytes.size() - 5);
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard
