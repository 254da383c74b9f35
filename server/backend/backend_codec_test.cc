#include "server/backend/backend_codec.h"

#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/byte_split.h"

namespace memshard {
namespace backend {
namespace {

std::string Encode(BackendProtocol protocol, const BackendRequest& request) {
  std::string out;
  EncodeRequest(protocol, request, [&](absl::string_view bytes) {
    out.append(bytes.data(), bytes.size());
  });
  return out;
}

BackendRequest Req(BackendOp op, absl::string_view key = "k") {
  BackendRequest r;
  r.op = op;
  r.key = key;
  return r;
}

TEST(EncodeTest, Meta) {
  const auto meta = BackendProtocol::kMeta;
  EXPECT_EQ(Encode(meta, Req(BackendOp::kGet, "foo")), "mg foo v f t\r\n");
  EXPECT_EQ(Encode(meta, Req(BackendOp::kGets)), "mg k v f t c\r\n");
  BackendRequest gat = Req(BackendOp::kGat);
  gat.exptime = 300;
  EXPECT_EQ(Encode(meta, gat), "mg k T300 v f t\r\n");
  gat.op = BackendOp::kGats;
  EXPECT_EQ(Encode(meta, gat), "mg k T300 v f t c\r\n");
  gat.op = BackendOp::kTouch;
  gat.exptime = -1;
  EXPECT_EQ(Encode(meta, gat), "mg k T-1\r\n");

  BackendRequest set = Req(BackendOp::kSet);
  set.value = "hello";
  set.flags = 7;
  set.exptime = 60;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 MS c\r\nhello\r\n");
  set.op = BackendOp::kAdd;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 ME c\r\nhello\r\n");
  set.op = BackendOp::kReplace;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 MR c\r\nhello\r\n");
  set.op = BackendOp::kAppend;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 MA c\r\nhello\r\n");
  set.op = BackendOp::kPrepend;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 MP c\r\nhello\r\n");
  set.op = BackendOp::kCas;
  set.cas = 99;
  EXPECT_EQ(Encode(meta, set), "ms k 5 F7 T60 MS c C99\r\nhello\r\n");

  EXPECT_EQ(Encode(meta, Req(BackendOp::kDelete)), "md k\r\n");
  BackendRequest incr = Req(BackendOp::kIncr);
  incr.delta = 18446744073709551615ull;
  EXPECT_EQ(Encode(meta, incr), "ma k MI D18446744073709551615 v c\r\n");
  incr.op = BackendOp::kDecr;
  incr.delta = 3;
  EXPECT_EQ(Encode(meta, incr), "ma k MD D3 v c\r\n");
  EXPECT_EQ(Encode(meta, Req(BackendOp::kVersion, "")), "version\r\n");
  BackendRequest flush = Req(BackendOp::kFlushAll, "");
  EXPECT_EQ(Encode(meta, flush), "flush_all\r\n");
  flush.delay = 10;
  EXPECT_EQ(Encode(meta, flush), "flush_all 10\r\n");
}

TEST(EncodeTest, Text) {
  const auto text = BackendProtocol::kText;
  EXPECT_EQ(Encode(text, Req(BackendOp::kGet, "foo")), "get foo\r\n");
  EXPECT_EQ(Encode(text, Req(BackendOp::kGets)), "gets k\r\n");
  BackendRequest gat = Req(BackendOp::kGat);
  gat.exptime = 300;
  EXPECT_EQ(Encode(text, gat), "gat 300 k\r\n");
  gat.op = BackendOp::kGats;
  EXPECT_EQ(Encode(text, gat), "gats 300 k\r\n");
  gat.op = BackendOp::kTouch;
  EXPECT_EQ(Encode(text, gat), "touch k 300\r\n");
  BackendRequest set = Req(BackendOp::kSet);
  set.value = "";
  set.flags = 4294967295u;
  set.exptime = -1;
  EXPECT_EQ(Encode(text, set), "set k 4294967295 -1 0\r\n\r\n");
  set.op = BackendOp::kCas;
  set.value = "v";
  set.cas = 5;
  EXPECT_EQ(Encode(text, set), "cas k 4294967295 -1 1 5\r\nv\r\n");
  set.op = BackendOp::kPrepend;
  EXPECT_EQ(Encode(text, set), "prepend k 4294967295 -1 1\r\nv\r\n");
  EXPECT_EQ(Encode(text, Req(BackendOp::kDelete)), "delete k\r\n");
  BackendRequest incr = Req(BackendOp::kIncr);
  incr.delta = 2;
  EXPECT_EQ(Encode(text, incr), "incr k 2\r\n");
  incr.op = BackendOp::kDecr;
  EXPECT_EQ(Encode(text, incr), "decr k 2\r\n");
}

TEST(EncodeTest, LongestKeyFits) {
  std::string key(250, 'x');
  BackendRequest r = Req(BackendOp::kCas, key);
  r.value = "v";
  r.flags = 4294967295u;
  r.exptime = INT64_MIN;
  r.cas = UINT64_MAX;
  EXPECT_EQ(Encode(BackendProtocol::kMeta, r),
            absl::StrCat("ms ", key,
                         " 1 F4294967295 T-9223372036854775808 MS c "
                         "C18446744073709551615\r\nv\r\n"));
}

// A reply as a comparable value (owning its bytes).
struct Parsed {
  ReplyParse result = ReplyParse::kIncomplete;
  BackendStatus status = BackendStatus::kMiss;
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  int64_t ttl = 0;
  bool operator==(const Parsed& o) const {
    return std::tie(result, status, value, flags, cas, ttl) ==
           std::tie(o.result, o.status, o.value, o.flags, o.cas, o.ttl);
  }
};

void PrintTo(const Parsed& p, std::ostream* os) {
  *os << "{" << static_cast<int>(p.result) << " " << BackendStatusName(p.status)
      << " '" << p.value << "' f" << p.flags << " c" << p.cas << " t" << p.ttl
      << "}";
}

Parsed ParseOne(BackendProtocol protocol, BackendOp op, absl::string_view in,
                size_t* consumed = nullptr) {
  Parsed p;
  BackendReply reply;
  size_t used = 0, need = 0;
  p.result = ParseReply(protocol, op, in, &used, &need, &reply);
  if (p.result == ReplyParse::kIncomplete) {
    EXPECT_GT(need, in.size());
  }
  if (p.result == ReplyParse::kOk) {
    p.status = reply.status;
    p.value = std::string(reply.value);
    p.flags = reply.flags;
    p.cas = reply.cas;
    p.ttl = reply.ttl;
  }
  if (consumed != nullptr) *consumed = used;
  return p;
}

Parsed Ok(BackendStatus status, std::string value = "", uint32_t flags = 0,
          uint64_t cas = 0, int64_t ttl = kTtlUnknown) {
  Parsed p;
  p.result = ReplyParse::kOk;
  p.status = status;
  p.value = std::move(value);
  p.flags = flags;
  p.cas = cas;
  p.ttl = ttl;
  return p;
}

// Parses `in` (one or more replies to `op`) and checks it answers the same
// at every byte split.
std::vector<Parsed> ParseAll(BackendProtocol protocol, BackendOp op,
                             absl::string_view in) {
  auto step = [&](absl::string_view buffered) {
    SplitStep<Parsed> s;
    size_t consumed = 0;
    Parsed p = ParseOne(protocol, op, buffered, &consumed);
    if (p.result == ReplyParse::kIncomplete) return s;
    s.complete = true;
    s.outcome = p;
    s.consumed = consumed;
    s.stop = p.result == ReplyParse::kInvalid;
    return s;
  };
  EXPECT_TRUE(SameAtEverySplit(in, step));
  auto transcript = FeedChunks({in}, step);
  EXPECT_EQ(transcript.unconsumed, 0u);
  return transcript.outcomes;
}

using V = std::vector<Parsed>;
constexpr auto kMeta = BackendProtocol::kMeta;
constexpr auto kText = BackendProtocol::kText;

TEST(ParseMetaTest, Retrieval) {
  EXPECT_EQ(
      ParseAll(kMeta, BackendOp::kGet,
               "VA 5 f7 t-1\r\nhello\r\nEN\r\nVA 0 t100 f0\r\n\r\n"),
      V({Ok(BackendStatus::kHit, "hello", 7, 0, -1), Ok(BackendStatus::kMiss),
         Ok(BackendStatus::kHit, "", 0, 0, 100)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kGats, "VA 2 f1 t30 c77\r\nab\r\n"),
            V({Ok(BackendStatus::kHit, "ab", 1, 77, 30)}));
  // Values may hold "\r\n".
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kGet, "VA 4 f0 t-1\r\n\r\n\r\n\r\n"),
            V({Ok(BackendStatus::kHit, "\r\n\r\n", 0, 0, -1)}));
}

TEST(ParseMetaTest, OtherOps) {
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kTouch, "HD\r\nEN\r\n"),
            V({Ok(BackendStatus::kTouched), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kSet, "HD\r\nNS\r\n"),
            V({Ok(BackendStatus::kStored), Ok(BackendStatus::kNotStored)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kCas, "EX\r\nNF\r\nHD\r\n"),
            V({Ok(BackendStatus::kExists), Ok(BackendStatus::kNotFound),
               Ok(BackendStatus::kStored)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kDelete, "HD\r\nNF\r\n"),
            V({Ok(BackendStatus::kDeleted), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kIncr,
                     "VA 2\r\n42\r\nNF\r\nCLIENT_ERROR cannot increment or "
                     "decrement non-numeric value\r\n"),
            V({Ok(BackendStatus::kNumber, "42"), Ok(BackendStatus::kNotFound),
               Ok(BackendStatus::kClientError,
                  "cannot increment or decrement non-numeric value")}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kVersion, "VERSION 1.6.18\r\n"),
            V({Ok(BackendStatus::kVersion, "1.6.18")}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kFlushAll, "OK\r\n"),
            V({Ok(BackendStatus::kOk)}));
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kSet,
                     "SERVER_ERROR out of memory storing object\r\nERROR\r\n"),
            V({Ok(BackendStatus::kServerError, "out of memory storing object"),
               Ok(BackendStatus::kError)}));
}

TEST(ParseMetaTest, StoredCarriesTheNewCas) {
  EXPECT_EQ(ParseAll(kMeta, BackendOp::kSet, "HD c42\r\n"),
            V({Ok(BackendStatus::kStored, "", 0, 42)}));
}

TEST(ParseMetaTest, RawRepliesAreKeptWhole) {
  EXPECT_EQ(
      ParseAll(kMeta, BackendOp::kMetaRaw,
               "VA 2 f1 Oab\r\nhi\r\nHD\r\nEN\r\nNF k\r\nME k exp=-1 "
               "la=1\r\nCLIENT_ERROR bad\r\nVA 0\r\n\r\n"),
      V({Ok(BackendStatus::kRaw, "VA 2 f1 Oab\r\nhi\r\n"),
         Ok(BackendStatus::kRaw, "HD\r\n"), Ok(BackendStatus::kRaw, "EN\r\n"),
         Ok(BackendStatus::kRaw, "NF k\r\n"),
         Ok(BackendStatus::kRaw, "ME k exp=-1 la=1\r\n"),
         Ok(BackendStatus::kRaw, "CLIENT_ERROR bad\r\n"),
         Ok(BackendStatus::kRaw, "VA 0\r\n\r\n")}));
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kMetaRaw, "VA 1\r\nab\r\n").result,
            ReplyParse::kInvalid);
  BackendRequest raw = Req(BackendOp::kMetaRaw, "k");
  raw.value = "ms k 2 T0\r\nhi\r\n";
  EXPECT_EQ(Encode(kMeta, raw), "ms k 2 T0\r\nhi\r\n");
}

TEST(ParseMetaTest, OutOfSyncIsInvalid) {
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kGet, "STORED\r\n").result,
            ReplyParse::kInvalid);
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kSet, "EN\r\n").result,
            ReplyParse::kInvalid);
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kGet, "VA x\r\n").result,
            ReplyParse::kInvalid);
  // The data block must end in "\r\n".
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kGet, "VA 1 f0\r\nabc\r\n").result,
            ReplyParse::kInvalid);
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kGet, "VA 1 fx\r\na\r\n").result,
            ReplyParse::kInvalid);
  EXPECT_EQ(ParseOne(kMeta, BackendOp::kIncr, "VA 1\r\nx\r\n").result,
            ReplyParse::kInvalid);
}

TEST(ParseMetaTest, IncompleteAsksForTheWholeValue) {
  BackendReply reply;
  size_t consumed = 0, need = 0;
  EXPECT_EQ(ParseReply(kMeta, BackendOp::kGet, "VA 1000 f0\r\nabc", &consumed,
                       &need, &reply),
            ReplyParse::kIncomplete);
  EXPECT_EQ(need, 12u + 1000u + 2u);
}

TEST(ParseTextTest, Retrieval) {
  EXPECT_EQ(ParseAll(kText, BackendOp::kGet,
                     "VALUE k 7 5\r\nhello\r\nEND\r\nEND\r\n"),
            V({Ok(BackendStatus::kHit, "hello", 7), Ok(BackendStatus::kMiss)}));
  EXPECT_EQ(
      ParseAll(kText, BackendOp::kGets, "VALUE k 0 2 123\r\nab\r\nEND\r\n"),
      V({Ok(BackendStatus::kHit, "ab", 0, 123)}));
  EXPECT_EQ(
      ParseOne(kText, BackendOp::kGet, "VALUE k 0 2\r\nab\r\nVALUE").result,
      ReplyParse::kInvalid);
}

TEST(ParseTextTest, OtherOps) {
  EXPECT_EQ(ParseAll(kText, BackendOp::kAdd,
                     "STORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\n"),
            V({Ok(BackendStatus::kStored), Ok(BackendStatus::kNotStored),
               Ok(BackendStatus::kExists), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseAll(kText, BackendOp::kDelete, "DELETED\r\nNOT_FOUND\r\n"),
            V({Ok(BackendStatus::kDeleted), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseAll(kText, BackendOp::kTouch, "TOUCHED\r\nNOT_FOUND\r\n"),
            V({Ok(BackendStatus::kTouched), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseAll(kText, BackendOp::kDecr, "0\r\nNOT_FOUND\r\n"),
            V({Ok(BackendStatus::kNumber, "0"), Ok(BackendStatus::kNotFound)}));
  EXPECT_EQ(ParseOne(kText, BackendOp::kDelete, "STORED\r\n").result,
            ReplyParse::kInvalid);
  EXPECT_EQ(ParseOne(kText, BackendOp::kIncr, "-1\r\n").result,
            ReplyParse::kInvalid);
}

}  // namespace
}  // namespace backend
}  // namespace memshard
