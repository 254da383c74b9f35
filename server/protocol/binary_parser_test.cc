#include "server/protocol/binary_parser.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/byte_split.h"

namespace memshard {
namespace {

using ::testing::ElementsAre;

// A hand-built request frame. Lengths default to the real ones; the test
// may lie in the header to build malformed frames.
struct Frame {
  uint8_t magic = kBinaryRequestMagic;
  uint8_t opcode = 0;
  std::string extras;
  std::string key;
  std::string value;
  uint32_t opaque = 0xdeadbeef;
  uint64_t cas = 0;
  int64_t key_length = -1;     // header override
  int64_t extras_length = -1;  // header override
  int64_t body_length = -1;    // header override

  std::string Bytes() const {
    char h[kBinaryHeaderSize] = {};
    h[0] = static_cast<char>(magic);
    h[1] = static_cast<char>(opcode);
    absl::big_endian::Store16(
        h + 2,
        static_cast<uint16_t>(key_length >= 0 ? key_length : key.size()));
    h[4] =
        static_cast<char>(extras_length >= 0 ? extras_length : extras.size());
    absl::big_endian::Store32(
        h + 8,
        static_cast<uint32_t>(body_length >= 0
                                  ? body_length
                                  : extras.size() + key.size() + value.size()));
    absl::big_endian::Store32(h + 12, opaque);
    absl::big_endian::Store64(h + 16, cas);
    return std::string(h, sizeof(h)) + extras + key + value;
  }
};

std::string Be32(uint32_t v) {
  char b[4];
  absl::big_endian::Store32(b, v);
  return std::string(b, 4);
}
std::string Be64(uint64_t v) {
  char b[8];
  absl::big_endian::Store64(b, v);
  return std::string(b, 8);
}

Frame Op(BinaryOpcode op, std::string key = "", std::string extras = "",
         std::string value = "") {
  Frame f;
  f.opcode = static_cast<uint8_t>(op);
  f.key = std::move(key);
  f.extras = std::move(extras);
  f.value = std::move(value);
  return f;
}

absl::string_view StatusName(BinaryStatus s) {
  switch (s) {
    case BinaryStatus::kUnknownCommand:
      return "UNKNOWN_COMMAND";
    case BinaryStatus::kValueTooLarge:
      return "E2BIG";
    case BinaryStatus::kInvalidArguments:
      return "EINVAL";
    default:
      return "OTHER";
  }
}

std::string Describe(const BinaryParseResult& result, const BinaryRequest& r) {
  switch (result.status) {
    case BinaryParseStatus::kIncomplete:
      return "INCOMPLETE";
    case BinaryParseStatus::kClose:
      return "CLOSE";
    case BinaryParseStatus::kError:
      return absl::StrCat(
          StatusName(result.error), " op=0x", absl::Hex(r.opcode),
          result.close ? " close" : "",
          result.swallow ? absl::StrCat(" swallow=", result.swallow) : "");
    case BinaryParseStatus::kOk:
      break;
  }
  std::string out(BinaryOpcodeName(r.opcode));
  if (r.quiet) out += " quiet";
  if (!r.key.empty()) absl::StrAppend(&out, " key=", absl::CEscape(r.key));
  if (!r.value.empty()) {
    absl::StrAppend(&out, " value=", absl::CEscape(r.value));
  }
  if (r.flags) absl::StrAppend(&out, " flags=", r.flags);
  if (r.expiration) absl::StrAppend(&out, " exp=", r.expiration);
  if (r.has_expiration) out += " has_exp";
  if (r.delta) absl::StrAppend(&out, " delta=", r.delta);
  if (r.initial) absl::StrAppend(&out, " initial=", r.initial);
  if (r.verbosity) absl::StrAppend(&out, " verbosity=", r.verbosity);
  if (r.cas) absl::StrAppend(&out, " cas=", r.cas);
  if (r.opaque != 0xdeadbeef) absl::StrAppend(&out, " opaque=", r.opaque);
  return out;
}

bool Within(absl::string_view part, absl::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() &&
          part.data() + part.size() <= whole.data() + whole.size());
}

SplitStep<std::string> Step(absl::string_view buffered,
                            const BinaryParserOptions& options) {
  BinaryRequest request;
  size_t consumed = 12345;
  const BinaryParseResult result =
      ParseBinary(buffered, options, &consumed, &request);
  SplitStep<std::string> step;
  if (result.status == BinaryParseStatus::kIncomplete) {
    EXPECT_EQ(consumed, 0u);
    if (result.need != 0) {
      EXPECT_GT(result.need, buffered.size());
    }
    return step;
  }
  EXPECT_LE(consumed, buffered.size());
  if (result.status == BinaryParseStatus::kOk) {
    EXPECT_TRUE(Within(request.key, buffered));
    EXPECT_TRUE(Within(request.extras, buffered));
    EXPECT_TRUE(Within(request.value, buffered));
  }
  step.complete = true;
  step.outcome = Describe(result, request);
  step.consumed = consumed + result.swallow;
  step.stop = result.status == BinaryParseStatus::kClose ||
              (result.status == BinaryParseStatus::kError && result.close);
  return step;
}

std::vector<std::string> Parse(absl::string_view input,
                               BinaryParserOptions options = {}) {
  auto step = [&](absl::string_view buffered) {
    return Step(buffered, options);
  };
  EXPECT_TRUE(SameAtEverySplit(input, step));
  return FeedChunks({input}, step).outcomes;
}

std::vector<std::string> Parse(const Frame& frame,
                               BinaryParserOptions options = {}) {
  return Parse(frame.Bytes(), options);
}

const std::string kSetExtras = Be32(7) + Be32(100);  // flags 7, exptime 100

TEST(BinaryParserTest, Retrieval) {
  EXPECT_THAT(Parse(Op(BinaryOpcode::kGet, "foo")), ElementsAre("Get key=foo"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kGetQ, "foo")),
              ElementsAre("GetQ quiet key=foo"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kGetK, "foo")),
              ElementsAre("GetK key=foo"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kGetKQ, "foo")),
              ElementsAre("GetKQ quiet key=foo"));
  for (BinaryOpcode op :
       {BinaryOpcode::kTouch, BinaryOpcode::kGat, BinaryOpcode::kGatQ,
        BinaryOpcode::kGatK, BinaryOpcode::kGatKQ}) {
    const auto out = Parse(Op(op, "k", Be32(60)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], ::testing::EndsWith("key=k exp=60"));
  }
}

TEST(BinaryParserTest, Storage) {
  for (BinaryOpcode op :
       {BinaryOpcode::kSet, BinaryOpcode::kAdd, BinaryOpcode::kReplace,
        BinaryOpcode::kSetQ, BinaryOpcode::kAddQ, BinaryOpcode::kReplaceQ}) {
    Frame f = Op(op, "key", kSetExtras, "value\r\n");
    f.cas = 42;
    const auto out = Parse(f);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0],
                ::testing::EndsWith(
                    "key=key value=value\\r\\n flags=7 exp=100 cas=42"));
  }
  EXPECT_THAT(Parse(Op(BinaryOpcode::kSet, "k", kSetExtras)),
              ElementsAre("Set key=k flags=7 exp=100"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kAppend, "k", "", "tail")),
              ElementsAre("Append key=k value=tail"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kPrependQ, "k", "", "head")),
              ElementsAre("PrependQ quiet key=k value=head"));
}

TEST(BinaryParserTest, DeleteArithmeticAndMisc) {
  EXPECT_THAT(Parse(Op(BinaryOpcode::kDelete, "k")),
              ElementsAre("Delete key=k"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kDeleteQ, "k")),
              ElementsAre("DeleteQ quiet key=k"));
  const std::string incr = Be64(5) + Be64(10) + Be32(0xffffffff);
  EXPECT_THAT(Parse(Op(BinaryOpcode::kIncrement, "n", incr)),
              ElementsAre("Increment key=n exp=4294967295 delta=5 initial=10"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kDecrementQ, "n", incr)),
              ElementsAre("DecrementQ quiet key=n exp=4294967295 delta=5 "
                          "initial=10"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kQuit)), ElementsAre("Quit"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kQuitQ)), ElementsAre("QuitQ quiet"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kFlush)), ElementsAre("Flush"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kFlushQ, "", Be32(30))),
              ElementsAre("FlushQ quiet exp=30 has_exp"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kNoop)), ElementsAre("Noop"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kVersion)), ElementsAre("Version"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kStat)), ElementsAre("Stat"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kStat, "settings")),
              ElementsAre("Stat key=settings"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kVerbosity, "", Be32(2))),
              ElementsAre("Verbosity verbosity=2"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kSaslListMechs)),
              ElementsAre("SaslListMechs"));
  EXPECT_THAT(
      Parse(Op(BinaryOpcode::kSaslAuth, "PLAIN", "", std::string("\0u\0p", 4))),
      ElementsAre("SaslAuth key=PLAIN value=\\000u\\000p"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kSaslStep, "PLAIN", "", "x")),
              ElementsAre("SaslStep key=PLAIN value=x"));
}

TEST(BinaryParserTest, OpaqueAndPipelining) {
  Frame a = Op(BinaryOpcode::kGetKQ, "a");
  a.opaque = 1;
  Frame b = Op(BinaryOpcode::kGetKQ, "b");
  b.opaque = 2;
  EXPECT_THAT(Parse(a.Bytes() + b.Bytes() + Op(BinaryOpcode::kNoop).Bytes()),
              ElementsAre("GetKQ quiet key=a opaque=1",
                          "GetKQ quiet key=b opaque=2", "Noop"));
}

TEST(BinaryParserTest, ScanFindsTheKeysOfPipelinedGets) {
  Frame set = Op(BinaryOpcode::kSet, "s");
  set.extras = std::string(8, '\0');
  set.value = "value";
  const std::string input = Op(BinaryOpcode::kGet, "a").Bytes() + set.Bytes() +
                            Op(BinaryOpcode::kGetKQ, "b").Bytes() +
                            Op(BinaryOpcode::kNoop).Bytes() +
                            Op(BinaryOpcode::kGetQ, "c").Bytes();
  absl::string_view keys[8];
  size_t count = 0;
  EXPECT_EQ(ScanBinaryRetrievalKeys(input, 8, keys, &count), input.size());
  ASSERT_EQ(count, 3u);
  EXPECT_EQ(keys[0], "a");
  EXPECT_EQ(keys[1], "b");
  EXPECT_EQ(keys[2], "c");
  // At most max_requests packets, whatever they are.
  EXPECT_EQ(ScanBinaryRetrievalKeys(input, 2, keys, &count),
            Op(BinaryOpcode::kGet, "a").Bytes().size() + set.Bytes().size());
  EXPECT_EQ(count, 1u);
  // It stops at an incomplete packet, and at bad magic.
  const std::string get_d = Op(BinaryOpcode::kGet, "d").Bytes();
  const std::string cut = get_d + get_d.substr(0, get_d.size() - 1);
  EXPECT_EQ(ScanBinaryRetrievalKeys(cut, 8, keys, &count), get_d.size());
  EXPECT_EQ(count, 1u);
  Frame bad = Op(BinaryOpcode::kGet, "e");
  bad.magic = 0x81;
  EXPECT_EQ(ScanBinaryRetrievalKeys(bad.Bytes() + get_d, 8, keys, &count), 0u);
  EXPECT_EQ(count, 0u);
  // A key longer than its body is no key.
  Frame liar = Op(BinaryOpcode::kGet, "f");
  liar.key_length = 200;
  EXPECT_EQ(ScanBinaryRetrievalKeys(liar.Bytes(), 8, keys, &count),
            liar.Bytes().size());
  EXPECT_EQ(count, 0u);
}

TEST(BinaryParserTest, BadMagicCloses) {
  Frame f = Op(BinaryOpcode::kGet, "k");
  f.magic = 0x81;  // a response
  EXPECT_THAT(Parse(f), ElementsAre("CLOSE"));
  EXPECT_THAT(Parse("get foo\r\n"), ElementsAre("CLOSE"));
  // Even a good frame before it is answered first.
  EXPECT_THAT(Parse(Op(BinaryOpcode::kNoop).Bytes() + "x"),
              ElementsAre("Noop", "CLOSE"));
}

TEST(BinaryParserTest, KeyAndExtrasLongerThanBodyClose) {
  // CVE-2016-8704 (append), -8705 (set), -8706 (SASL auth): a value length
  // of body - key - extras that goes negative.
  Frame append = Op(BinaryOpcode::kAppend, "key", "", "v");
  append.body_length = 2;
  EXPECT_THAT(Parse(append), ElementsAre("UNKNOWN_COMMAND op=0xe close"));
  Frame set = Op(BinaryOpcode::kSet, "key", kSetExtras, "v");
  set.key_length = 0xffff;
  EXPECT_THAT(Parse(set), ElementsAre("UNKNOWN_COMMAND op=0x1 close"));
  Frame set_extras = Op(BinaryOpcode::kSet, "k", kSetExtras);
  set_extras.body_length = 8;  // key + extras = 9
  EXPECT_THAT(Parse(set_extras), ElementsAre("UNKNOWN_COMMAND op=0x1 close"));
  Frame sasl = Op(BinaryOpcode::kSaslAuth, "PLAIN", "", "x");
  sasl.body_length = 1;
  EXPECT_THAT(Parse(sasl), ElementsAre("UNKNOWN_COMMAND op=0x21 close"));
  Frame extras_only = Op(BinaryOpcode::kGet, "k");
  extras_only.extras_length = 255;
  EXPECT_THAT(Parse(extras_only), ElementsAre("UNKNOWN_COMMAND op=0x0 close"));
}

TEST(BinaryParserTest, HugeBodyClosesWithoutWaiting) {
  // CVE-2011-4971: a body length near 2^32 must not be waited for, buffered
  // or added to anything that can wrap.
  Frame f = Op(BinaryOpcode::kSet, "k", kSetExtras, "v");
  f.body_length = 0xffffffff;
  EXPECT_THAT(Parse(f), ElementsAre("E2BIG op=0x1 close"));
  Frame get = Op(BinaryOpcode::kGet, "k");
  get.body_length = 0xfffffff0;
  EXPECT_THAT(Parse(get), ElementsAre("E2BIG op=0x0 close"));
  // Just over what any valid request can be.
  BinaryParserOptions small;
  small.max_value_size = 100;
  Frame edge = Op(BinaryOpcode::kSet, "k", kSetExtras);
  edge.body_length = 100 + 250 + 20 + 1;
  EXPECT_THAT(Parse(edge, small), ElementsAre("E2BIG op=0x1 close"));
}

TEST(BinaryParserTest, OversizedValueIsSwallowed) {
  BinaryParserOptions small;
  small.max_value_size = 4;
  const std::string big =
      Op(BinaryOpcode::kSet, "k", kSetExtras, "12345").Bytes();
  EXPECT_THAT(Parse(big + Op(BinaryOpcode::kNoop).Bytes(), small),
              ElementsAre("E2BIG op=0x1 swallow=14", "Noop"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kSet, "k", kSetExtras, "1234"), small),
              ElementsAre("Set key=k value=1234 flags=7 exp=100"));
  EXPECT_THAT(Parse(Op(BinaryOpcode::kAppendQ, "k", "", "12345"), small),
              ElementsAre("E2BIG op=0x19 swallow=6"));
}

TEST(BinaryParserTest, UnknownOpcodeIsSwallowed) {
  Frame f = Op(BinaryOpcode::kGet, "key", "", "junk");
  f.opcode = 0x3f;
  EXPECT_THAT(Parse(f.Bytes() + Op(BinaryOpcode::kNoop).Bytes()),
              ElementsAre("UNKNOWN_COMMAND op=0x3f swallow=7", "Noop"));
}

TEST(BinaryParserTest, LengthsThatDoNotFitTheOpcodeClose) {
  const std::string incr = Be64(1) + Be64(0) + Be32(0);
  std::vector<Frame> bad = {
      Op(BinaryOpcode::kGet),                         // no key
      Op(BinaryOpcode::kGet, "k", Be32(1)),           // extras
      Op(BinaryOpcode::kGet, "k", "", "v"),           // value
      Op(BinaryOpcode::kSet, "k", Be32(1), "v"),      // short extras
      Op(BinaryOpcode::kSet, "", kSetExtras, "v"),    // no key
      Op(BinaryOpcode::kDelete, "k", "", "v"),        // value
      Op(BinaryOpcode::kIncrement, "k", Be64(1)),     // short extras
      Op(BinaryOpcode::kIncrement, "k", incr, "v"),   // value
      Op(BinaryOpcode::kAppend, "k", Be32(1), "v"),   // extras
      Op(BinaryOpcode::kNoop, "k"),                   // key
      Op(BinaryOpcode::kVersion, "", "", "v"),        // value
      Op(BinaryOpcode::kQuit, "", Be32(0)),           // extras
      Op(BinaryOpcode::kFlush, "", Be64(0)),          // 8-byte extras
      Op(BinaryOpcode::kFlush, "k"),                  // key
      Op(BinaryOpcode::kTouch, "k"),                  // no extras
      Op(BinaryOpcode::kGat, "", Be32(1)),            // no key
      Op(BinaryOpcode::kStat, "", Be32(1)),           // extras
      Op(BinaryOpcode::kSaslAuth, "", "", "x"),       // no mechanism
      Op(BinaryOpcode::kSaslListMechs, "PLAIN"),      // key
      Op(BinaryOpcode::kVerbosity),                   // no extras
      Op(BinaryOpcode::kGet, std::string(251, 'k')),  // key > 250
  };
  for (const Frame& f : bad) {
    const auto out = Parse(f);
    ASSERT_EQ(out.size(), 1u) << absl::CEscape(f.Bytes());
    EXPECT_THAT(out[0], ::testing::StartsWith("EINVAL"))
        << absl::CEscape(f.Bytes());
    EXPECT_THAT(out[0], ::testing::EndsWith("close"))
        << absl::CEscape(f.Bytes());
  }
  EXPECT_THAT(Parse(Op(BinaryOpcode::kGet, std::string(250, 'k'))),
              ElementsAre("Get key=" + std::string(250, 'k')));
}

TEST(BinaryParserTest, IncompleteWaitsForTheWholePacket) {
  BinaryRequest request;
  size_t consumed = 99;
  const std::string frame =
      Op(BinaryOpcode::kSet, "k", kSetExtras, "value").Bytes();
  BinaryParseResult r = ParseBinary(absl::string_view(frame).substr(0, 10), {},
                                    &consumed, &request);
  EXPECT_EQ(r.status, BinaryParseStatus::kIncomplete);
  EXPECT_EQ(r.need, kBinaryHeaderSize);
  EXPECT_EQ(r.prefix, 0u);
  r = ParseBinary(absl::string_view(frame).substr(0, 30), {}, &consumed,
                  &request);
  EXPECT_EQ(r.status, BinaryParseStatus::kIncomplete);
  EXPECT_EQ(r.need, frame.size());
  EXPECT_EQ(consumed, 0u);
  // The header is checked: what precedes the value, and which request it
  // is, are known (a connection may refuse it before its value).
  EXPECT_EQ(r.prefix, kBinaryHeaderSize + 8 + 1);
  EXPECT_EQ(request.op, BinaryOpcode::kSet);
  EXPECT_EQ(request.opcode, static_cast<uint8_t>(BinaryOpcode::kSet));
  r = ParseBinary(frame, {}, &consumed, &request);
  EXPECT_EQ(r.status, BinaryParseStatus::kOk);
  EXPECT_EQ(consumed, frame.size());
}

TEST(BinaryParserTest, EveryKnownOpcodeHasAName) {
  int known = 0;
  for (int op = 0; op < 256; ++op) {
    if (IsKnownBinaryOpcode(static_cast<uint8_t>(op))) {
      ++known;
      EXPECT_NE(BinaryOpcodeName(static_cast<uint8_t>(op)), "Unknown");
    }
  }
  EXPECT_EQ(known, 36);
}

}  // namespace
}  // namespace memshard
