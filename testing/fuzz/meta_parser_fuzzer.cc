// libFuzzer target: the meta protocol parser (IsMetaLine, ParseMeta,
// DecodeMetaBase64).
//
// The input is a client's byte stream, parsed the way a connection does:
// a line IsMetaLine() accepts goes to ParseMeta, any other to ParseText.
// Checked, for every parse:
//  - no read past the bytes given (each parse sees an exactly sized heap
//    copy), even when ParseMeta is handed a line that is not meta;
//  - `consumed` fits the input and the status (nothing for kIncomplete and
//    kClose, the line, or line + data block + "\r\n" for ms);
//  - every view lies inside the consumed bytes (a base64 key inside
//    key_buffer), the key obeys memcached's limits, at most 17 flags, no
//    flag twice, an opaque of at most 32 bytes, and the typed fields agree
//    with the flags sent;
//  - buffering is bounded (kIncomplete only for a line without newline
//    within 2048 bytes, or an ms waiting for its announced block);
//  - the stream's transcript does not depend on how it was cut into reads;
//  - base64: any bytes absl::Base64Escape encodes decode back to
//    themselves, and decoding junk never yields more than 3/4 of it.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/request.h"
#include "server/protocol/text_parser.h"
#include "testing/fuzz/line_checks.h"
#include "testing/fuzz/split_feed.h"

namespace memshard::fuzz {
namespace {

std::string Describe(const ParseResult& r, size_t consumed,
                     const MetaRequest& m) {
  std::string s =
      absl::StrCat("meta ", StatusName(r.status), " consumed=", consumed,
                   " swallow=", r.swallow, " msg=\"", r.message,
                   "\" cmd=", static_cast<int>(m.command), " key=\"",
                   absl::CEscape(m.key), "\"", m.base64_key ? " b" : "",
                   " value=\"", absl::CEscape(m.value), "\" flags=");
  for (size_t i = 0; i < m.flag_count && i < kMaxMetaFlags; ++i) {
    absl::StrAppend(&s, std::string(1, m.flags[i].flag),
                    absl::CEscape(m.flags[i].token), ",");
  }
  absl::StrAppend(&s, " q=", m.quiet, " u=", m.no_bump, " v=", m.return_value,
                  " I=", m.invalidate, " cas=", m.has_cas, ":", m.cas,
                  " ttl=", m.has_ttl, ":", m.ttl, " vivify=", m.vivify, ":",
                  m.vivify_ttl, " recache=", m.has_recache, ":", m.recache_ttl,
                  " F=", m.client_flags, " mode=", static_cast<int>(m.set_mode),
                  " decr=", m.decrement, " delta=", m.delta,
                  " initial=", m.initial);
  return s;
}

std::string DescribeText(const ParseResult& r, size_t consumed,
                         const Request& request) {
  std::string s =
      absl::StrCat("text ", StatusName(r.status), " consumed=", consumed,
                   " swallow=", r.swallow, " msg=\"", r.message,
                   "\" cmd=", CommandName(request.command));
  for (absl::string_view key : request.keys) {
    absl::StrAppend(&s, " key=\"", absl::CEscape(key), "\"");
  }
  absl::StrAppend(&s, " value=\"", absl::CEscape(request.value), "\"",
                  request.noreply ? " noreply" : "");
  return s;
}

bool KnownFlag(char f) {
  return absl::string_view("bNTROPLkstcflhvuqFCMJDI").find(f) !=
         absl::string_view::npos;
}

// Invariants of one ParseMeta call on `in` (any bytes, meta or not).
void CheckMeta(absl::string_view in, const ParseResult& r, size_t consumed,
               const MetaRequest& m, bool meta_line) {
  // Built only when a check fails (describing every parse would dominate).
  auto context = [&] {
    return absl::StrCat(Describe(r, consumed, m), QuoteInput(in));
  };
  // ParseMeta allows no multiget-long line, meta or not.
  const size_t newline = CheckLineFraming(
      in, r, consumed, m.command == MetaCommand::kSet, [] { return false; },
      context);
  if (newline == absl::string_view::npos) return;
  if (!meta_line) {
    // Not a meta line: nothing but "ERROR".
    CHECK(r.status == ParseStatus::kError) << context();
  }
  if (r.swallow != 0) {
    CHECK(m.command == MetaCommand::kSet) << context();
    CHECK(r.status == ParseStatus::kClientError ||
          r.status == ParseStatus::kServerError)
        << context();
    CHECK_GE(r.swallow, 2u) << context();
  }
  if (r.status == ParseStatus::kServerError) {
    CHECK_GT(r.swallow, kMaxValueSize + 2) << context();
  }
  const absl::string_view used = in.substr(0, consumed);
  CHECK(Within(m.value, used)) << context();
  CHECK_LE(m.flag_count, kMaxMetaFlags) << context();
  for (size_t i = 0; i < m.flag_count; ++i) {
    CHECK(Within(m.flags[i].token, used)) << context();
  }
  if (m.base64_key) {
    CHECK(m.key.empty() || Within(m.key, m.key_buffer)) << context();
  } else {
    CHECK(Within(m.key, used)) << context();
  }
  if (r.status != ParseStatus::kOk) return;

  CHECK(m.command != MetaCommand::kNone) << context();
  if (m.command == MetaCommand::kNoop) return;
  CHECK(!m.key.empty()) << context();
  if (!m.base64_key) {
    CHECK_LE(m.key.size(), kMaxKeyLength) << context();
    CHECK(m.key.find_first_of(absl::string_view(" \n\0", 3)) ==
          absl::string_view::npos)
        << context();
  } else {
    // Decoded from at most 250 bytes of base64.
    CHECK_LE(m.key.size(), kMaxKeyLength * 3 / 4) << context();
  }
  if (m.command == MetaCommand::kDebug) return;
  bool seen[256] = {};
  for (size_t i = 0; i < m.flag_count; ++i) {
    const MetaFlag& f = m.flags[i];
    CHECK(KnownFlag(f.flag)) << context();
    CHECK(!seen[static_cast<unsigned char>(f.flag)])
        << "flag twice: " << context();
    seen[static_cast<unsigned char>(f.flag)] = true;
    if (f.flag == 'O') {
      CHECK_LE(f.token.size() + 1, kMaxMetaOpaqueLength) << context();
    }
    if (f.flag == 'M') CHECK_EQ(f.token.size(), 1u) << context();
  }
  CHECK_EQ(m.quiet, m.Has('q')) << context();
  CHECK_EQ(m.no_bump, m.Has('u')) << context();
  CHECK_EQ(m.return_value, m.Has('v')) << context();
  CHECK_EQ(m.invalidate, m.Has('I')) << context();
  CHECK_EQ(m.base64_key, m.Has('b')) << context();
  CHECK_EQ(m.has_cas, m.Has('C')) << context();
  CHECK_EQ(m.has_ttl, m.Has('T')) << context();
  CHECK_EQ(m.vivify, m.Has('N')) << context();
  CHECK_EQ(m.has_recache, m.Has('R')) << context();
  if (!m.Has('D')) CHECK_EQ(m.delta, 1u) << context();
  if (!m.Has('J')) CHECK_EQ(m.initial, 0u) << context();
  if (!m.Has('F')) CHECK_EQ(m.client_flags, 0u) << context();
  if (m.command == MetaCommand::kSet) {
    CheckDataBlock(in, consumed, newline, m.value, context);
  } else {
    CHECK(m.value.empty()) << context();
  }
}

// `twice`: parse every meta line twice and compare (in the whole-input
// feeding only).
FeedStep MetaStep(absl::string_view in, bool twice) {
  // Reused like the connection's scratch requests.
  static MetaRequest* const meta = new MetaRequest();
  static Request* const text = new Request();
  FeedStep step;
  size_t consumed = 12345;
  const bool meta_line = IsMetaLine(in);
  // Robustness: ParseMeta on any bytes, not only meta lines.
  ParseResult r = ParseMeta(in, Options(), &consumed, meta);
  CheckMeta(in, r, consumed, *meta, meta_line);
  if (meta_line) {
    step.outcome = Describe(r, consumed, *meta);
    if (twice) {
      // The same answer again: Clear() resets everything.
      r = ParseMeta(in, Options(), &consumed, meta);
      CHECK_EQ(step.outcome, Describe(r, consumed, *meta));
    }
  } else {
    consumed = 12345;
    r = ParseText(in, Options(), &consumed, text);
    CHECK_LE(consumed, in.size());
    step.outcome = DescribeText(r, consumed, *text);
  }
  switch (r.status) {
    case ParseStatus::kIncomplete:
      step.outcome.clear();
      return step;
    case ParseStatus::kClose:
      step.complete = true;
      step.stop = true;
      return step;
    default:
      step.complete = true;
      step.consumed = consumed + r.swallow;
      return step;
  }
}

void CheckBase64(absl::string_view input) {
  // Any bytes round-trip through the encoder the reply side uses.
  const absl::string_view raw = input.substr(0, 300);
  std::string decoded;
  const std::string encoded = absl::Base64Escape(raw);
  const bool ok = DecodeMetaBase64(encoded, &decoded);
  if (raw.empty()) {
    CHECK(!ok);
  } else {
    CHECK(ok && decoded == raw)
        << "base64 \"" << encoded << "\" decodes to \""
        << absl::CEscape(decoded) << "\", not \"" << absl::CEscape(raw) << "\"";
  }
  // Junk decodes to at most 3 bytes per 4 of input, and never to nothing
  // on success.
  const absl::string_view junk = input.substr(0, 400);
  if (DecodeMetaBase64(junk, &decoded)) {
    CHECK(!decoded.empty());
    CHECK_LE(decoded.size(), junk.size() / 4 * 3);
  }
}

}  // namespace
}  // namespace memshard::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  using memshard::fuzz::MetaStep;
  memshard::fuzz::CheckSameAtSplits(
      input, [](absl::string_view in) { return MetaStep(in, true); },
      [](absl::string_view in) { return MetaStep(in, false); });
  memshard::fuzz::CheckBase64(input);
  return 0;
}
