#include "server/protocol/binary_parser.h"

#include "absl/base/internal/endian.h"

namespace memshard {
namespace {

constexpr uint64_t kMaxKeyLength = 250;
// The longest extras any opcode takes (incr/decr: delta, initial, expiry).
constexpr uint64_t kMaxExtrasLength = 20;

uint16_t Load16(const char* p) { return absl::big_endian::Load16(p); }
uint32_t Load32(const char* p) { return absl::big_endian::Load32(p); }
uint64_t Load64(const char* p) { return absl::big_endian::Load64(p); }

BinaryParseResult Error(BinaryStatus error, bool close, uint64_t swallow = 0) {
  BinaryParseResult result;
  result.status = BinaryParseStatus::kError;
  result.error = error;
  result.close = close;
  result.swallow = swallow;
  return result;
}

// Folds a quiet opcode into its loud form.
BinaryOpcode Loud(BinaryOpcode op, bool* quiet) {
  *quiet = true;
  switch (op) {
    case BinaryOpcode::kGetQ:
      return BinaryOpcode::kGet;
    case BinaryOpcode::kGetKQ:
      return BinaryOpcode::kGetK;
    case BinaryOpcode::kSetQ:
      return BinaryOpcode::kSet;
    case BinaryOpcode::kAddQ:
      return BinaryOpcode::kAdd;
    case BinaryOpcode::kReplaceQ:
      return BinaryOpcode::kReplace;
    case BinaryOpcode::kDeleteQ:
      return BinaryOpcode::kDelete;
    case BinaryOpcode::kIncrementQ:
      return BinaryOpcode::kIncrement;
    case BinaryOpcode::kDecrementQ:
      return BinaryOpcode::kDecrement;
    case BinaryOpcode::kQuitQ:
      return BinaryOpcode::kQuit;
    case BinaryOpcode::kFlushQ:
      return BinaryOpcode::kFlush;
    case BinaryOpcode::kAppendQ:
      return BinaryOpcode::kAppend;
    case BinaryOpcode::kPrependQ:
      return BinaryOpcode::kPrepend;
    case BinaryOpcode::kGatQ:
      return BinaryOpcode::kGat;
    case BinaryOpcode::kGatKQ:
      return BinaryOpcode::kGatK;
    default:
      *quiet = false;
      return op;
  }
}

// Whether the lengths fit the (loud) opcode: memcached's dispatch checks.
bool LengthsFit(BinaryOpcode op, uint64_t extras, uint64_t key, uint64_t body) {
  switch (op) {
    case BinaryOpcode::kVersion:
    case BinaryOpcode::kNoop:
    case BinaryOpcode::kQuit:
    case BinaryOpcode::kSaslListMechs:
      return extras == 0 && key == 0 && body == 0;
    case BinaryOpcode::kFlush:
      return key == 0 && body == extras && (extras == 0 || extras == 4);
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
      return extras == 8 && key != 0;
    case BinaryOpcode::kGet:
    case BinaryOpcode::kGetK:
    case BinaryOpcode::kDelete:
      return extras == 0 && key != 0 && body == key;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      return extras == 20 && key != 0 && body == key + extras;
    case BinaryOpcode::kAppend:
    case BinaryOpcode::kPrepend:
      return extras == 0 && key != 0;
    case BinaryOpcode::kStat:
      return extras == 0;
    case BinaryOpcode::kSaslAuth:
    case BinaryOpcode::kSaslStep:
      return extras == 0 && key != 0;
    case BinaryOpcode::kTouch:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
      // memcached lets a value ride along and ignores it; we refuse it so
      // a GAT's body is exactly what we parse.
      return extras == 4 && key != 0 && body == key + extras;
    case BinaryOpcode::kVerbosity:
      return extras == 4 && key == 0 && body == 4;
    default:
      return false;
  }
}

bool CarriesValue(BinaryOpcode op) {
  return op == BinaryOpcode::kSet || op == BinaryOpcode::kAdd ||
         op == BinaryOpcode::kReplace || op == BinaryOpcode::kAppend ||
         op == BinaryOpcode::kPrepend;
}

}  // namespace

absl::string_view BinaryStatusText(BinaryStatus status) {
  switch (status) {
    case BinaryStatus::kNoError:
      return "";
    case BinaryStatus::kKeyNotFound:
      return "Not found";
    case BinaryStatus::kKeyExists:
      return "Data exists for key.";
    case BinaryStatus::kValueTooLarge:
      return "Too large.";
    case BinaryStatus::kInvalidArguments:
      return "Invalid arguments";
    case BinaryStatus::kNotStored:
      return "Not stored.";
    case BinaryStatus::kNonNumeric:
      return "Non-numeric server-side value for incr or decr";
    case BinaryStatus::kAuthError:
      return "Auth failure.";
    case BinaryStatus::kAuthContinue:
      return "";
    case BinaryStatus::kUnknownCommand:
      return "Unknown command";
    case BinaryStatus::kOutOfMemory:
      return "Out of memory";
  }
  return "";
}

bool IsKnownBinaryOpcode(uint8_t opcode) {
  switch (opcode) {
#define MEMSHARD_BINARY_OPCODE_CASE(name, code) case code:
    MEMSHARD_BINARY_OPCODES(MEMSHARD_BINARY_OPCODE_CASE)
#undef MEMSHARD_BINARY_OPCODE_CASE
    return true;
  }
  return false;
}

absl::string_view BinaryOpcodeName(uint8_t opcode) {
  switch (opcode) {
#define MEMSHARD_BINARY_OPCODE_NAME(name, code) \
  case code:                                    \
    return absl::string_view(#name).substr(1);
    MEMSHARD_BINARY_OPCODES(MEMSHARD_BINARY_OPCODE_NAME)
#undef MEMSHARD_BINARY_OPCODE_NAME
  }
  return "Unknown";
}

void EncodeBinaryResponseHeader(const BinaryResponseHeader& header,
                                char out[kBinaryHeaderSize]) {
  out[0] = static_cast<char>(kBinaryResponseMagic);
  out[1] = static_cast<char>(header.opcode);
  absl::big_endian::Store16(out + 2, header.key_length);
  out[4] = static_cast<char>(header.extras_length);
  out[5] = 0;  // data type: raw bytes
  absl::big_endian::Store16(out + 6, static_cast<uint16_t>(header.status));
  absl::big_endian::Store32(out + 8, header.body_length);
  absl::big_endian::Store32(out + 12, header.opaque);
  absl::big_endian::Store64(out + 16, header.cas);
}

BinaryParseResult ParseBinary(absl::string_view input,
                              const BinaryParserOptions& options,
                              size_t* consumed, BinaryRequest* request) {
  request->Clear();
  *consumed = 0;
  if (input.empty()) return BinaryParseResult();
  // Bad magic is judged on the first byte, so a stray text line never waits
  // for 24 bytes.
  if (static_cast<uint8_t>(input[0]) != kBinaryRequestMagic) {
    BinaryParseResult result;
    result.status = BinaryParseStatus::kClose;
    return result;
  }
  if (input.size() < kBinaryHeaderSize) {
    BinaryParseResult result;
    result.need = kBinaryHeaderSize;
    return result;
  }
  const char* const h = input.data();
  request->opcode = static_cast<uint8_t>(h[1]);
  // Widened before any arithmetic: none of it can overflow.
  const uint64_t key_length = Load16(h + 2);
  const uint64_t extras_length = static_cast<uint8_t>(h[4]);
  const uint64_t body_length = Load32(h + 8);
  request->opaque = Load32(h + 12);
  request->cas = Load64(h + 16);

  // memcached: keylen > bodylen || keylen + extlen > bodylen.
  if (key_length + extras_length > body_length) {
    *consumed = kBinaryHeaderSize;
    return Error(BinaryStatus::kUnknownCommand, /*close=*/true);
  }
  if (body_length > options.max_value_size + kMaxKeyLength + kMaxExtrasLength) {
    *consumed = kBinaryHeaderSize;
    return Error(BinaryStatus::kValueTooLarge, /*close=*/true);
  }
  const uint64_t rest = body_length;  // after the header
  if (!IsKnownBinaryOpcode(request->opcode)) {
    *consumed = kBinaryHeaderSize;
    return Error(BinaryStatus::kUnknownCommand, /*close=*/false, rest);
  }
  request->op =
      Loud(static_cast<BinaryOpcode>(request->opcode), &request->quiet);
  if (key_length > kMaxKeyLength ||
      !LengthsFit(request->op, extras_length, key_length, body_length)) {
    *consumed = kBinaryHeaderSize;
    return Error(BinaryStatus::kInvalidArguments, /*close=*/true);
  }
  const uint64_t value_length = body_length - key_length - extras_length;
  if (CarriesValue(request->op) && value_length > options.max_value_size) {
    *consumed = kBinaryHeaderSize;
    return Error(BinaryStatus::kValueTooLarge, /*close=*/false, rest);
  }

  const uint64_t total = kBinaryHeaderSize + body_length;
  if (input.size() < total) {
    BinaryParseResult result;
    result.need = total;
    result.prefix = kBinaryHeaderSize + extras_length + key_length;
    return result;
  }
  *consumed = static_cast<size_t>(total);
  const char* const extras = h + kBinaryHeaderSize;
  request->extras = absl::string_view(extras, extras_length);
  request->key = absl::string_view(extras + extras_length, key_length);
  request->value =
      absl::string_view(extras + extras_length + key_length, value_length);
  switch (request->op) {
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
      request->flags = Load32(extras);
      request->expiration = Load32(extras + 4);
      break;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      request->delta = Load64(extras);
      request->initial = Load64(extras + 8);
      request->expiration = Load32(extras + 16);
      break;
    case BinaryOpcode::kTouch:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
      request->expiration = Load32(extras);
      break;
    case BinaryOpcode::kFlush:
      if (extras_length == 4) {
        request->expiration = Load32(extras);
        request->has_expiration = true;
      }
      break;
    case BinaryOpcode::kVerbosity:
      request->verbosity = Load32(extras);
      break;
    default:
      break;
  }
  BinaryParseResult result;
  result.status = BinaryParseStatus::kOk;
  return result;
}

size_t ScanBinaryRetrievalKeys(absl::string_view input, size_t max_requests,
                               absl::string_view* keys, size_t* key_count) {
  *key_count = 0;
  size_t pos = 0;
  for (size_t n = 0; n < max_requests; ++n) {
    if (input.size() - pos < kBinaryHeaderSize) break;
    const auto* header = reinterpret_cast<const uint8_t*>(input.data() + pos);
    if (header[0] != kBinaryRequestMagic) break;
    const size_t key_length = size_t{header[2]} << 8 | header[3];
    const size_t extras_length = header[4];
    const size_t body_length = size_t{header[8]} << 24 |
                               size_t{header[9]} << 16 |
                               size_t{header[10]} << 8 | header[11];
    if (input.size() - pos - kBinaryHeaderSize < body_length) break;
    if (IsBinaryGet(static_cast<BinaryOpcode>(header[1])) && key_length > 0 &&
        extras_length + key_length <= body_length) {
      keys[(*key_count)++] =
          input.substr(pos + kBinaryHeaderSize + extras_length, key_length);
    }
    pos += kBinaryHeaderSize + body_length;
  }
  return pos;
}

}  // namespace memshard
