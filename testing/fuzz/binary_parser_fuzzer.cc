// libFuzzer target: the binary protocol parser (ParseBinary) and the
// response header encoder.
//
// The input is a client's byte stream. Checked, for every parse:
//  - no read past the bytes given (each parse sees an exactly sized heap
//    copy);
//  - the answer follows from the 24-byte header alone: kIncomplete (nothing
//    consumed) until header and body are buffered, `need` the exact packet
//    size once the header is; kClose only for bad magic; kError consumes
//    the header and swallows exactly the body when it goes on;
//  - on kOk exactly header + body is consumed, extras, key and value are
//    adjacent slices of the body in that order, the key is 1..250 bytes
//    where the opcode takes one, extras have the opcode's length, a value
//    obeys max_value_size, quiet opcodes fold into their loud form, and the
//    decoded fields re-encode to the bytes sent (a request header round
//    trip);
//  - the stream's transcript does not depend on how it was cut into reads;
//  - EncodeBinaryResponseHeader writes every field where a client decodes
//    it (a response header round trip on fuzzer-chosen fields).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "server/protocol/binary_parser.h"
#include "testing/fuzz/split_feed.h"

namespace memshard::fuzz {
namespace {

constexpr uint64_t kMaxValueSize = 1000;

const BinaryParserOptions& Options() {
  static const BinaryParserOptions options = [] {
    BinaryParserOptions o;
    o.max_value_size = kMaxValueSize;
    return o;
  }();
  return options;
}

absl::string_view StatusName(BinaryParseStatus s) {
  switch (s) {
    case BinaryParseStatus::kOk:
      return "ok";
    case BinaryParseStatus::kIncomplete:
      return "incomplete";
    case BinaryParseStatus::kError:
      return "error";
    case BinaryParseStatus::kClose:
      return "close";
  }
  return "?";
}

std::string Describe(const BinaryParseResult& r, size_t consumed,
                     const BinaryRequest& q) {
  return absl::StrCat(
      StatusName(r.status), " consumed=", consumed,
      " error=", static_cast<int>(r.error), " close=", r.close,
      " swallow=", r.swallow, " opcode=", q.opcode,
      " op=", static_cast<int>(q.op), " quiet=", q.quiet, " opaque=", q.opaque,
      " cas=", q.cas, " extras=\"", absl::CEscape(q.extras), "\" key=\"",
      absl::CEscape(q.key), "\" value=\"", absl::CEscape(q.value),
      "\" flags=", q.flags, " exp=", q.expiration, ":", q.has_expiration,
      " delta=", q.delta, " initial=", q.initial, " verbosity=", q.verbosity);
}

// The opcode's quiet forms and the lengths it takes (protocol-binary.txt).
struct Shape {
  BinaryOpcode loud;
  bool quiet;
  int extras;       // required extras length; -1: 0 or 4 (flush)
  bool key;         // requires a key
  bool no_key;      // forbids a key
  bool value;       // may carry a value
  bool empty_body;  // body must be empty
};

Shape ShapeOf(uint8_t opcode) {
  using O = BinaryOpcode;
  const O op = static_cast<O>(opcode);
  switch (op) {
    case O::kGet:
    case O::kGetK:
    case O::kDelete:
      return {op, false, 0, true, false, false, false};
    case O::kGetQ:
      return {O::kGet, true, 0, true, false, false, false};
    case O::kGetKQ:
      return {O::kGetK, true, 0, true, false, false, false};
    case O::kDeleteQ:
      return {O::kDelete, true, 0, true, false, false, false};
    case O::kSet:
    case O::kAdd:
    case O::kReplace:
      return {op, false, 8, true, false, true, false};
    case O::kSetQ:
      return {O::kSet, true, 8, true, false, true, false};
    case O::kAddQ:
      return {O::kAdd, true, 8, true, false, true, false};
    case O::kReplaceQ:
      return {O::kReplace, true, 8, true, false, true, false};
    case O::kAppend:
    case O::kPrepend:
      return {op, false, 0, true, false, true, false};
    case O::kAppendQ:
      return {O::kAppend, true, 0, true, false, true, false};
    case O::kPrependQ:
      return {O::kPrepend, true, 0, true, false, true, false};
    case O::kIncrement:
    case O::kDecrement:
      return {op, false, 20, true, false, false, false};
    case O::kIncrementQ:
      return {O::kIncrement, true, 20, true, false, false, false};
    case O::kDecrementQ:
      return {O::kDecrement, true, 20, true, false, false, false};
    case O::kQuit:
    case O::kNoop:
    case O::kVersion:
    case O::kSaslListMechs:
      return {op, false, 0, false, true, false, true};
    case O::kQuitQ:
      return {O::kQuit, true, 0, false, true, false, true};
    case O::kFlush:
      return {op, false, -1, false, true, false, false};
    case O::kFlushQ:
      return {O::kFlush, true, -1, false, true, false, false};
    case O::kStat:
      return {op, false, 0, false, false, true, false};
    case O::kVerbosity:
      return {op, false, 4, false, true, false, false};
    case O::kTouch:
    case O::kGat:
    case O::kGatK:
      return {op, false, 4, true, false, false, false};
    case O::kGatQ:
      return {O::kGat, true, 4, true, false, false, false};
    case O::kGatKQ:
      return {O::kGatK, true, 4, true, false, false, false};
    case O::kSaslAuth:
    case O::kSaslStep:
      return {op, false, 0, true, false, true, false};
  }
  LOG(FATAL) << "unknown opcode " << static_cast<int>(opcode);
  return {};
}

bool StoresValue(BinaryOpcode op) {
  return op == BinaryOpcode::kSet || op == BinaryOpcode::kAdd ||
         op == BinaryOpcode::kReplace || op == BinaryOpcode::kAppend ||
         op == BinaryOpcode::kPrepend;
}

void CheckParse(absl::string_view in, const BinaryParseResult& r,
                size_t consumed, const BinaryRequest& q) {
  // Built only when a check fails (describing every parse would dominate).
  auto context = [&] {
    return absl::StrCat(Describe(r, consumed, q), "\ninput: \"",
                        absl::CEscape(in.substr(0, 300)),
                        in.size() > 300 ? "...\"" : "\"");
  };
  CHECK(!in.empty());
  CHECK_LE(consumed, in.size()) << context();
  if (static_cast<uint8_t>(in[0]) != kBinaryRequestMagic) {
    CHECK(r.status == BinaryParseStatus::kClose) << context();
    CHECK_EQ(consumed, 0u) << context();
    return;
  }
  CHECK(r.status != BinaryParseStatus::kClose) << context();
  if (in.size() < kBinaryHeaderSize) {
    CHECK(r.status == BinaryParseStatus::kIncomplete) << context();
    CHECK_EQ(r.need, kBinaryHeaderSize) << context();
    CHECK_EQ(consumed, 0u) << context();
    return;
  }
  const char* h = in.data();
  const uint8_t opcode = static_cast<uint8_t>(h[1]);
  const uint64_t key_length = absl::big_endian::Load16(h + 2);
  const uint64_t extras_length = static_cast<uint8_t>(h[4]);
  const uint64_t body_length = absl::big_endian::Load32(h + 8);
  const uint64_t total = kBinaryHeaderSize + body_length;
  CHECK_EQ(q.opcode, opcode) << context();
  CHECK_EQ(q.opaque, absl::big_endian::Load32(h + 12)) << context();
  CHECK_EQ(q.cas, absl::big_endian::Load64(h + 16)) << context();
  if (r.status == BinaryParseStatus::kIncomplete) {
    CHECK_EQ(consumed, 0u) << context();
    CHECK_EQ(r.need, total) << context();
    CHECK_GT(total, in.size()) << context();
    // Buffering is bounded: only packets that could be valid are awaited.
    CHECK_LE(body_length, kMaxValueSize + 250 + 20) << context();
    CHECK(IsKnownBinaryOpcode(opcode)) << context();
    CHECK_LE(key_length, 250u) << context();
    return;
  }
  if (r.status == BinaryParseStatus::kError) {
    CHECK_EQ(consumed, kBinaryHeaderSize) << context();
    CHECK(r.error != BinaryStatus::kNoError) << context();
    if (r.close) {
      CHECK_EQ(r.swallow, 0u) << context();
    } else {
      // Goes on: the body is dropped, whole, as it arrives.
      CHECK_EQ(r.swallow, body_length) << context();
      CHECK(r.error == BinaryStatus::kUnknownCommand ||
            r.error == BinaryStatus::kValueTooLarge)
          << context();
    }
    if (key_length + extras_length > body_length) {
      CHECK(r.close) << "a body too short for its key and extras: "
                     << context();
    }
    CHECK(!BinaryStatusText(r.error).empty()) << context();
    CHECK(q.key.empty() && q.value.empty() && q.extras.empty()) << context();
    return;
  }

  // kOk.
  CHECK_EQ(consumed, total) << context();
  CHECK(IsKnownBinaryOpcode(opcode)) << context();
  CHECK_NE(BinaryOpcodeName(opcode), "Unknown") << context();
  const Shape shape = ShapeOf(opcode);
  CHECK(q.op == shape.loud) << context();
  CHECK_EQ(q.quiet, shape.quiet) << context();
  CHECK_EQ(q.extras.size(), extras_length) << context();
  CHECK_EQ(q.key.size(), key_length) << context();
  CHECK_EQ(q.extras.size() + q.key.size() + q.value.size(), body_length)
      << context();
  // Adjacent slices of the body, in order (empty ones may point anywhere).
  const absl::string_view body = in.substr(kBinaryHeaderSize, body_length);
  CHECK(Within(q.extras, body) && Within(q.key, body) && Within(q.value, body))
      << context();
  CHECK(body.substr(0, extras_length) == q.extras) << context();
  CHECK(body.substr(extras_length, key_length) == q.key) << context();
  CHECK(body.substr(extras_length + key_length) == q.value) << context();
  CHECK_LE(q.key.size(), 250u) << context();
  if (shape.key) CHECK(!q.key.empty()) << context();
  if (shape.no_key) CHECK(q.key.empty()) << context();
  if (!shape.value) CHECK(q.value.empty()) << context();
  if (shape.empty_body) CHECK_EQ(body_length, 0u) << context();
  if (shape.extras >= 0) {
    CHECK_EQ(q.extras.size(), static_cast<size_t>(shape.extras)) << context();
  } else {
    CHECK(q.extras.empty() || q.extras.size() == 4) << context();
  }
  if (StoresValue(q.op)) CHECK_LE(q.value.size(), kMaxValueSize) << context();

  // Decoded extras re-encode to the bytes sent.
  char e[20] = {};
  size_t e_size = 0;
  switch (q.op) {
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
      absl::big_endian::Store32(e, q.flags);
      absl::big_endian::Store32(e + 4, q.expiration);
      e_size = 8;
      break;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      absl::big_endian::Store64(e, q.delta);
      absl::big_endian::Store64(e + 8, q.initial);
      absl::big_endian::Store32(e + 16, q.expiration);
      e_size = 20;
      break;
    case BinaryOpcode::kTouch:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
      absl::big_endian::Store32(e, q.expiration);
      e_size = 4;
      break;
    case BinaryOpcode::kFlush:
      CHECK_EQ(q.has_expiration, !q.extras.empty()) << context();
      absl::big_endian::Store32(e, q.expiration);
      e_size = q.has_expiration ? 4 : 0;
      if (!q.has_expiration) CHECK_EQ(q.expiration, 0u) << context();
      break;
    case BinaryOpcode::kVerbosity:
      absl::big_endian::Store32(e, q.verbosity);
      e_size = 4;
      break;
    default:
      break;
  }
  CHECK(absl::string_view(e, e_size) == q.extras)
      << "extras do not round-trip: " << context();

  // The request header, rebuilt from the parse (data type and vbucket,
  // bytes 5..7, are not parsed).
  char rebuilt[kBinaryHeaderSize];
  std::memcpy(rebuilt, h, kBinaryHeaderSize);
  rebuilt[0] = static_cast<char>(kBinaryRequestMagic);
  rebuilt[1] = static_cast<char>(q.opcode);
  absl::big_endian::Store16(rebuilt + 2, static_cast<uint16_t>(q.key.size()));
  rebuilt[4] = static_cast<char>(q.extras.size());
  absl::big_endian::Store32(
      rebuilt + 8,
      static_cast<uint32_t>(q.extras.size() + q.key.size() + q.value.size()));
  absl::big_endian::Store32(rebuilt + 12, q.opaque);
  absl::big_endian::Store64(rebuilt + 16, q.cas);
  CHECK(std::memcmp(rebuilt, h, kBinaryHeaderSize) == 0)
      << "header does not round-trip: " << context();
}

FeedStep BinaryStep(absl::string_view in) {
  static BinaryRequest* const request = new BinaryRequest();
  size_t consumed = 12345;
  const BinaryParseResult r = ParseBinary(in, Options(), &consumed, request);
  CheckParse(in, r, consumed, *request);
  FeedStep step;
  switch (r.status) {
    case BinaryParseStatus::kIncomplete:
      return step;
    case BinaryParseStatus::kClose:
      step.complete = true;
      step.stop = true;
      step.outcome = "close";
      return step;
    case BinaryParseStatus::kOk:
      step.complete = true;
      step.consumed = consumed;
      break;
    case BinaryParseStatus::kError:
      step.complete = true;
      step.stop = r.close;
      step.consumed = consumed + r.swallow;
      break;
  }
  step.outcome = Describe(r, consumed, *request);
  return step;
}

// Fuzzer-chosen response header fields survive encoding.
void CheckResponseHeader(absl::string_view input) {
  char raw[24] = {};
  std::memcpy(raw, input.data(), std::min<size_t>(input.size(), sizeof(raw)));
  BinaryResponseHeader header;
  header.opcode = static_cast<uint8_t>(raw[0]);
  header.status = static_cast<BinaryStatus>(absl::big_endian::Load16(raw + 1));
  header.extras_length = static_cast<uint8_t>(raw[3]);
  header.key_length = absl::big_endian::Load16(raw + 4);
  header.body_length = absl::big_endian::Load32(raw + 6);
  header.opaque = absl::big_endian::Load32(raw + 10);
  header.cas = absl::big_endian::Load64(raw + 14);
  char out[kBinaryHeaderSize];
  std::memset(out, 0xAA, sizeof(out));
  EncodeBinaryResponseHeader(header, out);
  CHECK_EQ(static_cast<uint8_t>(out[0]), kBinaryResponseMagic);
  CHECK_EQ(static_cast<uint8_t>(out[1]), header.opcode);
  CHECK_EQ(absl::big_endian::Load16(out + 2), header.key_length);
  CHECK_EQ(static_cast<uint8_t>(out[4]), header.extras_length);
  CHECK_EQ(out[5], 0);  // data type: raw bytes
  CHECK_EQ(absl::big_endian::Load16(out + 6),
           static_cast<uint16_t>(header.status));
  CHECK_EQ(absl::big_endian::Load32(out + 8), header.body_length);
  CHECK_EQ(absl::big_endian::Load32(out + 12), header.opaque);
  CHECK_EQ(absl::big_endian::Load64(out + 16), header.cas);
}

}  // namespace
}  // namespace memshard::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  memshard::fuzz::CheckSameAtSplits(input, memshard::fuzz::BinaryStep,
                                    memshard::fuzz::BinaryStep,
                                    /*drip_limit=*/256);
  memshard::fuzz::CheckResponseHeader(input);
  return 0;
}
