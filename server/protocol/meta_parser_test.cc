#include "server/protocol/meta_parser.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/byte_split.h"

namespace memshard {
namespace {

using ::testing::ElementsAre;

absl::string_view Name(MetaCommand c) {
  switch (c) {
    case MetaCommand::kGet:
      return "mg";
    case MetaCommand::kSet:
      return "ms";
    case MetaCommand::kDelete:
      return "md";
    case MetaCommand::kArithmetic:
      return "ma";
    case MetaCommand::kNoop:
      return "mn";
    case MetaCommand::kDebug:
      return "me";
    case MetaCommand::kNone:
      break;
  }
  return "none";
}

absl::string_view ModeName(MetaSetMode m) {
  switch (m) {
    case MetaSetMode::kSet:
      return "set";
    case MetaSetMode::kAdd:
      return "add";
    case MetaSetMode::kAppend:
      return "append";
    case MetaSetMode::kPrepend:
      return "prepend";
    case MetaSetMode::kReplace:
      return "replace";
  }
  return "?";
}

// One owning, comparable line for what a connection would act on.
std::string Describe(const ParseResult& result, const MetaRequest& r) {
  switch (result.status) {
    case ParseStatus::kIncomplete:
      return "INCOMPLETE";
    case ParseStatus::kError:
      return "ERROR";
    case ParseStatus::kClientError:
      return absl::StrCat(
          "CLIENT_ERROR ", result.message,
          result.swallow ? absl::StrCat(" swallow=", result.swallow) : "");
    case ParseStatus::kServerError:
      return absl::StrCat("SERVER_ERROR ", result.message,
                          " swallow=", result.swallow);
    case ParseStatus::kClose:
      return "CLOSE";
    case ParseStatus::kOk:
      break;
  }
  std::string out(Name(r.command));
  if (r.command == MetaCommand::kNoop) return out;
  absl::StrAppend(&out, " ", absl::CEscape(r.key));
  if (r.base64_key) out += " b64";
  if (r.command == MetaCommand::kSet) {
    absl::StrAppend(&out, " value=\"", absl::CEscape(r.value), "\" ",
                    ModeName(r.set_mode));
  }
  if (r.flag_count > 0) {
    out += " [";
    for (size_t i = 0; i < r.flag_count; ++i) {
      absl::StrAppend(&out, i ? " " : "", std::string(1, r.flags[i].flag),
                      r.flags[i].token);
    }
    out += "]";
  }
  if (r.quiet) out += " q";
  if (r.no_bump) out += " u";
  if (r.return_value) out += " v";
  if (r.invalidate) out += " I";
  if (r.has_cas) absl::StrAppend(&out, " cas=", r.cas);
  if (r.has_ttl) absl::StrAppend(&out, " ttl=", r.ttl);
  if (r.vivify) absl::StrAppend(&out, " vivify=", r.vivify_ttl);
  if (r.has_recache) absl::StrAppend(&out, " recache=", r.recache_ttl);
  if (r.client_flags) absl::StrAppend(&out, " F=", r.client_flags);
  if (r.decrement) out += " decr";
  if (r.delta != 1) absl::StrAppend(&out, " delta=", r.delta);
  if (r.initial != 0) absl::StrAppend(&out, " initial=", r.initial);
  return out;
}

bool Within(absl::string_view part, absl::string_view whole) {
  return part.data() >= whole.data() &&
         part.data() + part.size() <= whole.data() + whole.size();
}

// What a connection does: lines IsMetaLine() accepts go to ParseMeta; any
// other complete line is not ours (the test inputs have none); an
// incomplete line waits.
SplitStep<std::string> Step(absl::string_view buffered,
                            const TextParserOptions& options) {
  SplitStep<std::string> step;
  if (!IsMetaLine(buffered)) {
    EXPECT_EQ(buffered.find('\n'), absl::string_view::npos)
        << "not a meta line: " << absl::CEscape(buffered);
    if (buffered.size() > kMaxTextLineLength) {
      step.complete = true;
      step.outcome = "CLOSE";
      step.stop = true;
    }
    return step;
  }
  MetaRequest request;
  size_t consumed = 12345;
  const ParseResult result = ParseMeta(buffered, options, &consumed, &request);
  if (result.status == ParseStatus::kIncomplete) {
    EXPECT_EQ(consumed, 0u);
    if (result.need != 0) {
      EXPECT_GT(result.need, buffered.size());
    }
    return step;
  }
  EXPECT_LE(consumed, buffered.size());
  if (result.status == ParseStatus::kOk) {
    if (!request.base64_key && !request.key.empty()) {
      EXPECT_TRUE(Within(request.key, buffered));
    }
    if (!request.value.empty()) {
      EXPECT_TRUE(Within(request.value, buffered));
    }
  }
  step.complete = true;
  step.outcome = Describe(result, request);
  step.consumed = consumed + result.swallow;
  step.stop = result.status == ParseStatus::kClose;
  return step;
}

std::vector<std::string> Parse(absl::string_view input,
                               TextParserOptions options = {}) {
  auto step = [&](absl::string_view buffered) {
    return Step(buffered, options);
  };
  EXPECT_TRUE(SameAtEverySplit(input, step));
  const auto t = FeedChunks({input}, step);
  EXPECT_EQ(t.unconsumed, 0u) << absl::CEscape(input);
  EXPECT_EQ(t.pending_skip, 0u) << absl::CEscape(input);
  return t.outcomes;
}

const std::string kKey250(250, 'k');
const std::string kKey251(251, 'k');

TEST(IsMetaLineTest, TwoByteTokenStartingWithM) {
  EXPECT_TRUE(IsMetaLine("mg foo v\r\n"));
  EXPECT_TRUE(IsMetaLine("  mn\r\n"));
  EXPECT_TRUE(IsMetaLine("mz\n"));
  EXPECT_FALSE(IsMetaLine("mg foo v"));  // incomplete
  EXPECT_FALSE(IsMetaLine("mgx foo\r\n"));
  EXPECT_FALSE(IsMetaLine("m\r\n"));
  EXPECT_FALSE(IsMetaLine("get foo\r\n"));
  EXPECT_FALSE(IsMetaLine("\r\n"));
}

TEST(MetaParserTest, Get) {
  EXPECT_THAT(Parse("mg foo\r\n"), ElementsAre("mg foo"));
  EXPECT_THAT(Parse("mg foo s t c f l h O123 k v q u\r\n"),
              ElementsAre("mg foo [s t c f l h O123 k v q u] q u v"));
  EXPECT_THAT(Parse("mg  foo   v \n"), ElementsAre("mg foo [v] v"));
  EXPECT_THAT(Parse("mg foo N30 R10 T-1 Ppath Lx\r\n"),
              ElementsAre("mg foo [N30 R10 T-1 Ppath Lx] ttl=-1 vivify=30 "
                          "recache=10"));
}

TEST(MetaParserTest, GetErrors) {
  EXPECT_THAT(Parse("mg\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("mg " + kKey251 + " v\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("mg " + kKey250 + " v\r\n"),
              ElementsAre("mg " + kKey250 + " [v] v"));
  EXPECT_THAT(Parse("mg foo x\r\n"), ElementsAre("CLIENT_ERROR invalid flag"));
  EXPECT_THAT(Parse("mg foo k k\r\n"),
              ElementsAre("CLIENT_ERROR duplicate flag"));
  EXPECT_THAT(Parse("mg foo v O1 O2\r\n"),
              ElementsAre("CLIENT_ERROR duplicate flag"));
  // A byte above 126 counts as a duplicate in memcached.
  EXPECT_THAT(Parse("mg foo \xff\r\n"),
              ElementsAre("CLIENT_ERROR duplicate flag"));
  EXPECT_THAT(Parse("mg foo T\r\n"),
              ElementsAre("CLIENT_ERROR bad token in command line format"));
  EXPECT_THAT(Parse("mg foo Nx\r\n"),
              ElementsAre("CLIENT_ERROR bad token in command line format"));
  EXPECT_THAT(Parse("mg foo O" + std::string(31, 'o') + "\r\n"),
              ElementsAre("mg foo [O" + std::string(31, 'o') + "]"));
  EXPECT_THAT(Parse("mg foo O" + std::string(32, 'o') + "\r\n"),
              ElementsAre("CLIENT_ERROR opaque token too long"));
  // 17 flags fit; 18 do not.
  EXPECT_THAT(Parse("mg a c f h k l O s t u v N1 R1 T1 q P L I\r\n"),
              ElementsAre("mg a [c f h k l O s t u v N1 R1 T1 q P L I] q u v "
                          "I ttl=1 vivify=1 recache=1"));
  EXPECT_THAT(Parse("mg a c f h k l O s t u v N1 R1 T1 q P L I b\r\n"),
              ElementsAre("CLIENT_ERROR options flags are too long"));
  EXPECT_THAT(
      Parse("mg a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n"),
      ElementsAre("CLIENT_ERROR options flags are too long"));
}

TEST(MetaParserTest, LastBadArgumentNamesTheError) {
  // memcached keeps scanning after a bad argument; the last one wins, unless
  // an unknown or repeated flag stops the scan.
  EXPECT_THAT(Parse("mg foo Tx Dx\r\n"),
              ElementsAre("CLIENT_ERROR invalid numeric delta value"));
  EXPECT_THAT(Parse("mg foo Dx Tx\r\n"),
              ElementsAre("CLIENT_ERROR bad token in command line format"));
  EXPECT_THAT(Parse("mg foo Tx z\r\n"),
              ElementsAre("CLIENT_ERROR invalid flag"));
  // F keeps the previous message.
  EXPECT_THAT(Parse("mg foo Fx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("mg foo Jx Fx\r\n"),
              ElementsAre("CLIENT_ERROR invalid numeric initial value"));
  EXPECT_THAT(Parse("mg foo MEE\r\n"),
              ElementsAre("CLIENT_ERROR incorrect length for M token"));
}

TEST(MetaParserTest, Base64Keys) {
  EXPECT_THAT(Parse("mg Zm9v b k v\r\n"), ElementsAre("mg foo b64 [b k v] v"));
  EXPECT_THAT(Parse("mg foo b\r\n"),
              ElementsAre("CLIENT_ERROR error decoding key"));
  EXPECT_THAT(Parse("mg ==== b\r\n"),
              ElementsAre("CLIENT_ERROR error decoding key"));
  // md and ma hide the preparser's message.
  EXPECT_THAT(Parse("md foo b\r\n"),
              ElementsAre("CLIENT_ERROR invalid or duplicate flag"));
  EXPECT_THAT(Parse("me Zm9v b\r\n"), ElementsAre("me foo b64"));
  EXPECT_THAT(Parse("me foo b\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
}

TEST(MetaParserTest, Set) {
  EXPECT_THAT(Parse("ms foo 3\r\nbar\r\n"),
              ElementsAre("ms foo value=\"bar\" set"));
  EXPECT_THAT(Parse("ms foo 3 T0 F5 c k O123 q\r\nbar\r\n"),
              ElementsAre("ms foo value=\"bar\" set [T0 F5 c k O123 q] q "
                          "ttl=0 F=5"));
  EXPECT_THAT(Parse("ms foo 0 ME\r\n\r\n"),
              ElementsAre("ms foo value=\"\" add [ME]"));
  EXPECT_THAT(Parse("ms foo 1 MA\r\nx\r\nms foo 1 MP\r\nx\r\nms foo 1 MR\r\n"
                    "x\r\nms foo 1 MS C9 I\r\nx\r\n"),
              ElementsAre("ms foo value=\"x\" append [MA]",
                          "ms foo value=\"x\" prepend [MP]",
                          "ms foo value=\"x\" replace [MR]",
                          "ms foo value=\"x\" set [MS C9 I] I cas=9"));
  EXPECT_THAT(Parse("ms foo 4\r\na\r\nb\r\n"),
              ElementsAre("ms foo value=\"a\\r\\nb\" set"));
  EXPECT_THAT(Parse("ms Zm9v 1 b k\r\nx\r\n"),
              ElementsAre("ms foo b64 value=\"x\" set [b k]"));
}

TEST(MetaParserTest, SetErrorsBeforeTheLengthDoNotSwallow) {
  EXPECT_THAT(Parse("ms\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("ms foo\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("ms foo abc\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("ms foo -1\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("ms foo 2147483646\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("ms " + kKey251 + " 1\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("ms a 1 c f h k l O s t u v N1 R1 T1 q P L I\r\n"),
              ElementsAre("CLIENT_ERROR options flags too long"));
}

TEST(MetaParserTest, SetErrorsAfterTheLengthSwallowTheBlock) {
  EXPECT_THAT(
      Parse("ms foo 2 MX\r\nhi\r\n"),
      ElementsAre("CLIENT_ERROR invalid mode for ms M token swallow=4"));
  EXPECT_THAT(Parse("ms foo 2 F-1\r\nhi\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format swallow=4"));
  EXPECT_THAT(Parse("ms foo 2 Tx\r\nhi\r\n"),
              ElementsAre("CLIENT_ERROR bad token in command line format "
                          "swallow=4"));
  EXPECT_THAT(Parse("ms foo 2 b\r\nhi\r\n"),
              ElementsAre("CLIENT_ERROR error decoding key swallow=4"));
  EXPECT_THAT(Parse("ms foo 2 z\r\nhi\r\n"),
              ElementsAre("CLIENT_ERROR invalid flag swallow=4"));
  EXPECT_THAT(Parse("ms foo 2 O" + std::string(32, 'o') + "\r\nhi\r\n"),
              ElementsAre("CLIENT_ERROR opaque token too long swallow=4"));
  TextParserOptions small;
  small.max_value_size = 4;
  EXPECT_THAT(
      Parse("ms foo 5\r\nhello\r\nmn\r\n", small),
      ElementsAre("SERVER_ERROR object too large for cache swallow=7", "mn"));
}

TEST(MetaParserTest, SetBadDataChunk) {
  // The block is read whole, then its terminator judged.
  EXPECT_THAT(Parse("ms foo 3\r\nhijklmn\r\n"),
              ElementsAre("CLIENT_ERROR bad data chunk", "mn"));
}

TEST(MetaParserTest, Delete) {
  EXPECT_THAT(Parse("md foo q k O1\r\n"), ElementsAre("md foo [q k O1] q"));
  EXPECT_THAT(Parse("md foo I T30 C5\r\n"),
              ElementsAre("md foo [I T30 C5] I cas=5 ttl=30"));
  EXPECT_THAT(Parse("md\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("md foo x\r\n"),
              ElementsAre("CLIENT_ERROR invalid or duplicate flag"));
  EXPECT_THAT(Parse("md foo k k\r\n"),
              ElementsAre("CLIENT_ERROR invalid or duplicate flag"));
  EXPECT_THAT(Parse("md a c f h k l O s t u v N1 R1 T1 q P L I b\r\n"),
              ElementsAre("CLIENT_ERROR options flags too long"));
}

TEST(MetaParserTest, Arithmetic) {
  EXPECT_THAT(Parse("ma foo\r\n"), ElementsAre("ma foo"));
  EXPECT_THAT(Parse("ma foo N0 J10 D5 v t c\r\n"),
              ElementsAre("ma foo [N0 J10 D5 v t c] v vivify=0 delta=5 "
                          "initial=10"));
  EXPECT_THAT(Parse("ma foo MD\r\nma foo M-\r\nma foo MI\r\nma foo M+\r\n"),
              ElementsAre("ma foo [MD] decr", "ma foo [M-] decr", "ma foo [MI]",
                          "ma foo [M+]"));
  EXPECT_THAT(Parse("ma foo Mx\r\n"),
              ElementsAre("CLIENT_ERROR invalid mode for ma M token"));
  EXPECT_THAT(Parse("ma foo Dx\r\n"),
              ElementsAre("CLIENT_ERROR invalid or duplicate flag"));
  EXPECT_THAT(Parse("ma foo D18446744073709551615\r\n"),
              ElementsAre("ma foo [D18446744073709551615] "
                          "delta=18446744073709551615"));
  EXPECT_THAT(Parse("ma foo D18446744073709551616\r\n"),
              ElementsAre("CLIENT_ERROR invalid or duplicate flag"));
  EXPECT_THAT(Parse("ma\r\n"), ElementsAre("ERROR"));
}

TEST(MetaParserTest, NoopDebugAndUnknown) {
  EXPECT_THAT(Parse("mn\r\nmn foo bar\r\n"), ElementsAre("mn", "mn"));
  EXPECT_THAT(Parse("me foo\r\n"), ElementsAre("me foo"));
  EXPECT_THAT(Parse("me\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("me " + kKey251 + "\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("mz foo\r\n"), ElementsAre("ERROR"));
}

TEST(MetaParserTest, LongLinesClose) {
  EXPECT_THAT(Parse("mg " + std::string(3000, 'k') + "\r\n"),
              ElementsAre("CLOSE"));
}

TEST(MetaParserTest, Pipelined) {
  EXPECT_THAT(Parse("mg a v q\r\nms b 1 q\r\nx\r\nmd c q\r\nma d q\r\nmn\r\n"),
              ElementsAre("mg a [v q] q v", "ms b value=\"x\" set [q] q",
                          "md c [q] q", "ma d [q] q", "mn"));
}

TEST(MetaBase64Test, MatchesMemcachedDecoder) {
  std::string out;
  EXPECT_TRUE(DecodeMetaBase64("Zm9v", &out));
  EXPECT_EQ(out, "foo");
  EXPECT_TRUE(DecodeMetaBase64("Zg==", &out));
  EXPECT_EQ(out, "f");
  EXPECT_TRUE(DecodeMetaBase64("Zm8=", &out));
  EXPECT_EQ(out, "fo");
  // Bytes outside the alphabet are skipped; decoding stops after padding.
  EXPECT_TRUE(DecodeMetaBase64("Zm\n9v", &out));
  EXPECT_EQ(out, "foo");
  EXPECT_TRUE(DecodeMetaBase64("Zg==Zm9v", &out));
  EXPECT_EQ(out, "f");
  EXPECT_FALSE(DecodeMetaBase64("Zm8", &out));
  EXPECT_FALSE(DecodeMetaBase64("Zm9vYg", &out));
  EXPECT_FALSE(DecodeMetaBase64("====", &out));
  EXPECT_FALSE(DecodeMetaBase64("Z===", &out));
  EXPECT_FALSE(DecodeMetaBase64("", &out));
}

}  // namespace
}  // namespace memshard
