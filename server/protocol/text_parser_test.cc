#include "server/protocol/text_parser.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/protocol/request.h"
#include "testing/byte_split.h"

namespace memshard {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

bool IsStorage(Command c) {
  return c == Command::kSet || c == Command::kAdd || c == Command::kReplace ||
         c == Command::kAppend || c == Command::kPrepend || c == Command::kCas;
}

// Renders what a connection would act on as one owning, comparable line.
std::string Describe(const ParseResult& result, const Request& request,
                     size_t consumed) {
  std::string noreply = request.noreply ? " noreply" : "";
  switch (result.status) {
    case ParseStatus::kIncomplete:
      return "INCOMPLETE";
    case ParseStatus::kError:
      return absl::StrCat("ERROR", noreply);
    case ParseStatus::kClientError:
      return absl::StrCat("CLIENT_ERROR ", result.message, noreply);
    case ParseStatus::kServerError:
      return absl::StrCat("SERVER_ERROR ", result.message, noreply,
                          " swallow=", result.swallow);
    case ParseStatus::kClose:
      return absl::StrCat("CLOSE", result.message.empty() ? "" : " ",
                          result.message);
    case ParseStatus::kOk:
      break;
  }
  std::string out(CommandName(request.command));
  for (absl::string_view key : request.keys) {
    absl::StrAppend(&out, " ", absl::CEscape(key));
  }
  if (request.command == Command::kStats && !request.stats_group.empty()) {
    absl::StrAppend(&out, " group=", request.stats_group);
  }
  if (request.flags != 0) absl::StrAppend(&out, " flags=", request.flags);
  if (request.exptime != 0) {
    absl::StrAppend(&out, " exptime=", request.exptime);
  }
  if (request.cas_unique != 0) {
    absl::StrAppend(&out, " cas=", request.cas_unique);
  }
  if (request.delta != 0) absl::StrAppend(&out, " delta=", request.delta);
  if (request.delay != 0) absl::StrAppend(&out, " delay=", request.delay);
  if (request.verbosity != 0) {
    absl::StrAppend(&out, " verbosity=", request.verbosity);
  }
  if (request.memlimit_mb != 0) {
    absl::StrAppend(&out, " memlimit=", request.memlimit_mb);
  }
  if (IsStorage(request.command)) {
    absl::StrAppend(&out, " value=\"", absl::CEscape(request.value), "\"");
  }
  absl::StrAppend(&out, noreply);
  return out;
}

bool Within(absl::string_view part, absl::string_view whole) {
  return part.data() >= whole.data() &&
         part.data() + part.size() <= whole.data() + whole.size();
}

// One parse over the bytes buffered so far, checking the invariants every
// answer must keep.
SplitStep<std::string> Step(absl::string_view buffered,
                            const TextParserOptions& options) {
  Request request;
  size_t consumed = 12345;
  const ParseResult result = ParseText(buffered, options, &consumed, &request);
  SplitStep<std::string> step;
  if (result.status == ParseStatus::kIncomplete) {
    EXPECT_EQ(consumed, 0u);
    if (result.need != 0) {
      EXPECT_GT(result.need, buffered.size());
    }
    return step;
  }
  EXPECT_LE(consumed, buffered.size());
  if (result.status == ParseStatus::kClose) {
    EXPECT_EQ(consumed, 0u);
  } else {
    EXPECT_GT(consumed, 0u);
  }
  if (result.status == ParseStatus::kOk) {
    // Zero-copy: everything points into the input.
    for (absl::string_view key : request.keys) {
      EXPECT_TRUE(Within(key, buffered));
    }
    if (!request.value.empty()) {
      EXPECT_TRUE(Within(request.value, buffered));
    }
  }
  step.complete = true;
  step.outcome = Describe(result, request, consumed);
  step.consumed = consumed + result.swallow;
  step.stop = result.status == ParseStatus::kClose;
  return step;
}

// What a connection makes of `input` (read whole), after checking it makes
// the same of every split of it.
FeedTranscript<std::string> FeedWithSplits(absl::string_view input,
                                           TextParserOptions options = {},
                                           SplitOptions split = {}) {
  auto step = [&](absl::string_view buffered) {
    return Step(buffered, options);
  };
  EXPECT_TRUE(SameAtEverySplit(input, step, split));
  return FeedChunks({input}, step);
}

std::vector<std::string> Parse(absl::string_view input,
                               TextParserOptions options = {}) {
  const FeedTranscript<std::string> t = FeedWithSplits(input, options);
  EXPECT_EQ(t.unconsumed, 0u) << absl::CEscape(input);
  EXPECT_EQ(t.pending_skip, 0u) << absl::CEscape(input);
  return t.outcomes;
}

// A single direct call, for checking `consumed`, `need` and `swallow`.
struct OneParse {
  ParseResult result;
  size_t consumed = 0;
  Request request;
};
OneParse ParseOnce(absl::string_view input, TextParserOptions options = {}) {
  OneParse p;
  p.result = ParseText(input, options, &p.consumed, &p.request);
  return p;
}

const std::string kKey250(250, 'k');
const std::string kKey251(251, 'k');

// --- Retrieval -----------------------------------------------------------

TEST(TextParserTest, Get) {
  EXPECT_THAT(Parse("get foo\r\n"), ElementsAre("get foo"));
  EXPECT_THAT(Parse("get a b c\r\n"), ElementsAre("get a b c"));
  EXPECT_THAT(Parse("gets a b\r\n"), ElementsAre("gets a b"));
  EXPECT_THAT(Parse("bget a\r\n"), ElementsAre("get a"));
}

TEST(TextParserTest, GetToleratesSpacesAndBareNewline) {
  EXPECT_THAT(Parse("  get  a   b \r\n"), ElementsAre("get a b"));
  EXPECT_THAT(Parse("get a\nget b\n"), ElementsAre("get a", "get b"));
}

TEST(TextParserTest, GetWithoutKeysIsError) {
  EXPECT_THAT(Parse("get\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("get \r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("gets\r\n"), ElementsAre("ERROR"));
}

TEST(TextParserTest, KeysMayHoldOddBytes) {
  // Only spaces separate tokens; "\r" inside a line is part of a key.
  EXPECT_THAT(Parse("get k\rx\r\n"), ElementsAre("get k\\rx"));
  EXPECT_THAT(Parse("get k\tx\r\n"), ElementsAre("get k\\tx"));
}

TEST(TextParserTest, NulEndsTheLine) {
  // memcached's tokenizer stops at strlen().
  EXPECT_THAT(Parse(absl::string_view("get k\0garbage\r\n", 15)),
              ElementsAre("get k"));
  EXPECT_THAT(Parse(absl::string_view("\0get k\r\n", 8)), ElementsAre("ERROR"));
}

TEST(TextParserTest, GetKeyLength) {
  EXPECT_THAT(Parse("get " + kKey250 + "\r\n"), ElementsAre("get " + kKey250));
  EXPECT_THAT(Parse("get " + kKey251 + "\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("gets a " + kKey251 + " b\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
}

TEST(TextParserTest, Gat) {
  EXPECT_THAT(Parse("gat 10 a b\r\n"), ElementsAre("gat a b exptime=10"));
  EXPECT_THAT(Parse("gats -1 a\r\n"), ElementsAre("gats a exptime=-1"));
  // memcached answers a bare END to a gat without keys.
  EXPECT_THAT(Parse("gat 10\r\n"), ElementsAre("gat exptime=10"));
  EXPECT_THAT(Parse("gat\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("gat abc k\r\n"),
              ElementsAre("CLIENT_ERROR invalid exptime argument"));
  EXPECT_THAT(Parse("gats 0 " + kKey251 + "\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
}

// --- Storage -------------------------------------------------------------

TEST(TextParserTest, StorageCommands) {
  EXPECT_THAT(Parse("set k 5 100 3\r\nabc\r\n"),
              ElementsAre("set k flags=5 exptime=100 value=\"abc\""));
  EXPECT_THAT(Parse("add k 0 0 1\r\nx\r\n"), ElementsAre("add k value=\"x\""));
  EXPECT_THAT(Parse("replace k 0 0 1\r\nx\r\n"),
              ElementsAre("replace k value=\"x\""));
  EXPECT_THAT(Parse("append k 0 0 1\r\nx\r\n"),
              ElementsAre("append k value=\"x\""));
  EXPECT_THAT(Parse("prepend k 0 0 1\r\nx\r\n"),
              ElementsAre("prepend k value=\"x\""));
  EXPECT_THAT(Parse("cas k 1 2 3 99\r\nabc\r\n"),
              ElementsAre("cas k flags=1 exptime=2 cas=99 value=\"abc\""));
}

TEST(TextParserTest, StorageValueIsOpaque) {
  EXPECT_THAT(Parse("set k 0 0 0\r\n\r\n"), ElementsAre("set k value=\"\""));
  EXPECT_THAT(Parse(absl::string_view("set k 0 0 7\r\nab\r\nc\0d\r\n", 22)),
              ElementsAre("set k value=\"ab\\r\\nc\\000d\""));
  // The header may end in a bare "\n"; the block must end in "\r\n".
  EXPECT_THAT(Parse("set k 0 0 1\nx\r\n"), ElementsAre("set k value=\"x\""));
}

TEST(TextParserTest, StorageNoreply) {
  EXPECT_THAT(Parse("set k 0 0 1 noreply\r\nx\r\n"),
              ElementsAre("set k value=\"x\" noreply"));
  EXPECT_THAT(Parse("cas k 0 0 1 7 noreply\r\nx\r\n"),
              ElementsAre("cas k cas=7 value=\"x\" noreply"));
  // memcached ignores an extra argument that is not "noreply".
  EXPECT_THAT(Parse("set k 0 0 1 junk\r\nx\r\n"),
              ElementsAre("set k value=\"x\""));
  EXPECT_THAT(Parse("cas k 0 0 1 7 junk\r\nx\r\n"),
              ElementsAre("cas k cas=7 value=\"x\""));
}

TEST(TextParserTest, StorageArity) {
  // The data block is then read as a command line, as memcached does.
  EXPECT_THAT(Parse("set k 0 0\r\nx\r\n"), ElementsAre("ERROR", "ERROR"));
  EXPECT_THAT(Parse("set k 0 0 1 noreply extra\r\nx\r\n"),
              ElementsAre("ERROR", "ERROR"));
  EXPECT_THAT(Parse("cas k 0 0 1\r\nx\r\n"), ElementsAre("ERROR", "ERROR"));
  EXPECT_THAT(Parse("set\r\n"), ElementsAre("ERROR"));
}

TEST(TextParserTest, StorageKeyLength) {
  EXPECT_THAT(Parse("set " + kKey250 + " 0 0 1\r\nx\r\n"),
              ElementsAre("set " + kKey250 + " value=\"x\""));
  EXPECT_THAT(Parse("set " + kKey251 + " 0 0 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
}

TEST(TextParserTest, StorageFlags) {
  EXPECT_THAT(Parse("set k 4294967295 0 1\r\nx\r\n"),
              ElementsAre("set k flags=4294967295 value=\"x\""));
  // memcached 1.6.18 truncates this to 0; we refuse it.
  EXPECT_THAT(Parse("set k 4294967296 0 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("set k -1 0 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("set k 1x 0 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  // strtoul()'s grammar: a sign, leading blanks, "-0".
  EXPECT_THAT(Parse("set k +7 0 1\r\nx\r\n"),
              ElementsAre("set k flags=7 value=\"x\""));
  EXPECT_THAT(Parse("set k -0 0 1\r\nx\r\n"), ElementsAre("set k value=\"x\""));
  EXPECT_THAT(Parse("set k \t3 0 1\r\nx\r\n"),
              ElementsAre("set k flags=3 value=\"x\""));
}

TEST(TextParserTest, StorageExptime) {
  EXPECT_THAT(Parse("set k 0 -1 1\r\nx\r\n"),
              ElementsAre("set k exptime=-1 value=\"x\""));
  EXPECT_THAT(Parse("set k 0 9223372036854775807 1\r\nx\r\n"),
              ElementsAre("set k exptime=9223372036854775807 value=\"x\""));
  EXPECT_THAT(Parse("set k 0 -9223372036854775808 1\r\nx\r\n"),
              ElementsAre("set k exptime=-9223372036854775808 value=\"x\""));
  EXPECT_THAT(Parse("set k 0 9223372036854775808 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("set k 0 x 1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
}

TEST(TextParserTest, StorageBytes) {
  EXPECT_THAT(Parse("set k 0 0 -1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("set k 0 0 abc\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  // memcached's int32 bound, INT_MAX - 2.
  EXPECT_THAT(Parse("set k 0 0 2147483646\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  TextParserOptions huge;
  huge.max_value_size = uint64_t{1} << 40;
  OneParse p = ParseOnce("set k 0 0 2147483645\r\n", huge);
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_EQ(p.result.need, 22u + 2147483645u + 2u);
}

TEST(TextParserTest, StorageCasUnique) {
  EXPECT_THAT(Parse("cas k 0 0 1 18446744073709551615\r\nx\r\n"),
              ElementsAre("cas k cas=18446744073709551615 value=\"x\""));
  EXPECT_THAT(Parse("cas k 0 0 1 18446744073709551616\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("cas k 0 0 1 -1\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
  EXPECT_THAT(Parse("cas k 0 0 1 abc\r\nx\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format", "ERROR"));
}

TEST(TextParserTest, StorageErrorsHonourNoreply) {
  // memcached's out_string() stays silent after noreply, even for errors;
  // "noreply" is the last token wherever it sits.
  EXPECT_THAT(
      Parse("set k abc 0 1 noreply\r\nx\r\n"),
      ElementsAre("CLIENT_ERROR bad command line format noreply", "ERROR"));
  EXPECT_THAT(
      Parse("set k 0 0 noreply\r\nx\r\n"),
      ElementsAre("CLIENT_ERROR bad command line format noreply", "ERROR"));
  EXPECT_THAT(Parse("set k 0 0 1 noreply\r\nxy\r\n"),
              ElementsAre("CLIENT_ERROR bad data chunk noreply", "ERROR"));
}

TEST(TextParserTest, BadDataChunkSwallowsTheBlock) {
  // memcached reads <bytes>+2 bytes, then finds no "\r\n": the rest of the
  // line is parsed as a command.
  EXPECT_THAT(Parse("set k 0 0 1\r\nabc\r\n"),
              ElementsAre("CLIENT_ERROR bad data chunk", "ERROR"));
  EXPECT_THAT(Parse("set k 0 0 1\r\nabcdefg\r\nget k\r\n"),
              ElementsAre("CLIENT_ERROR bad data chunk", "ERROR", "get k"));
  const FeedTranscript<std::string> t = FeedWithSplits("set k 0 0 1\r\nx\nzz");
  EXPECT_THAT(t.outcomes, ElementsAre("CLIENT_ERROR bad data chunk"));
  EXPECT_EQ(t.unconsumed, 1u);

  OneParse p = ParseOnce("set k 0 0 1\r\nabc\r\n");
  EXPECT_EQ(p.result.status, ParseStatus::kClientError);
  EXPECT_EQ(p.result.message, "bad data chunk");
  EXPECT_EQ(p.consumed, 16u);
}

TEST(TextParserTest, ValueTooLarge) {
  TextParserOptions options;
  options.max_value_size = 10;
  EXPECT_THAT(Parse("set k 0 0 10\r\n0123456789\r\n", options),
              ElementsAre("set k value=\"0123456789\""));
  EXPECT_THAT(Parse("set k 0 0 11\r\n0123456789a\r\nget k\r\n", options),
              ElementsAre("SERVER_ERROR object too large for cache swallow=13",
                          "get k"));
  // The swallowed block is not checked for its "\r\n".
  EXPECT_THAT(
      Parse("set k 0 0 11 noreply\r\n0123456789aXYversion\r\n", options),
      ElementsAre("SERVER_ERROR object too large for cache noreply "
                  "swallow=13",
                  "version"));

  OneParse p = ParseOnce("set k 0 0 11\r\n", options);
  EXPECT_EQ(p.result.status, ParseStatus::kServerError);
  EXPECT_EQ(p.result.message, "object too large for cache");
  EXPECT_EQ(p.consumed, 14u);
  EXPECT_EQ(p.result.swallow, 13u);
  // The key is there for an executor that unlinks the old item, as
  // memcached does for a failed set.
  EXPECT_THAT(p.request.keys, ElementsAre("k"));
  EXPECT_EQ(p.request.command, Command::kSet);

  const FeedTranscript<std::string> t =
      FeedWithSplits("set k 0 0 11\r\n01234", options);
  EXPECT_EQ(t.pending_skip, 8u);
}

TEST(TextParserTest, IncompleteStorageReportsNeed) {
  for (absl::string_view input :
       {"set k 0 0 5\r\n", "set k 0 0 5\r\nab", "set k 0 0 5\r\nabcde\r"}) {
    OneParse p = ParseOnce(input);
    EXPECT_EQ(p.result.status, ParseStatus::kIncomplete) << input;
    EXPECT_EQ(p.result.need, 20u) << input;
    EXPECT_EQ(p.consumed, 0u) << input;
  }
  OneParse p = ParseOnce("set k 0 0 5");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_EQ(p.result.need, 0u);
  p = ParseOnce("");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
}

TEST(TextParserTest, Pipeline) {
  EXPECT_THAT(Parse("set a 0 0 1\r\n1\r\nget a b\r\ndelete a\r\nincr n 5\r\n"
                    "version\r\n"),
              ElementsAre("set a value=\"1\"", "get a b", "delete a",
                          "incr n delta=5", "version"));
}

// --- delete --------------------------------------------------------------

TEST(TextParserTest, Delete) {
  EXPECT_THAT(Parse("delete k\r\n"), ElementsAre("delete k"));
  EXPECT_THAT(Parse("delete k noreply\r\n"), ElementsAre("delete k noreply"));
  EXPECT_THAT(Parse("delete k 0\r\n"), ElementsAre("delete k"));
  EXPECT_THAT(Parse("delete k 0 noreply\r\n"), ElementsAre("delete k noreply"));
  // A lone "noreply" is the key.
  EXPECT_THAT(Parse("delete noreply\r\n"), ElementsAre("delete noreply"));
}

TEST(TextParserTest, DeleteErrors) {
  const std::string usage =
      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
  EXPECT_THAT(Parse("delete k 1\r\n"), ElementsAre(usage));
  EXPECT_THAT(Parse("delete k noreply x\r\n"), ElementsAre(usage));
  EXPECT_THAT(Parse("delete k x noreply\r\n"), ElementsAre(usage + " noreply"));
  EXPECT_THAT(Parse("delete k 0 noreply x\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("delete\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("delete " + kKey250 + "\r\n"),
              ElementsAre("delete " + kKey250));
  EXPECT_THAT(Parse("delete " + kKey251 + "\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("delete " + kKey251 + " noreply\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format noreply"));
}

// --- incr / decr / touch -------------------------------------------------

TEST(TextParserTest, IncrDecr) {
  EXPECT_THAT(Parse("incr k 5\r\n"), ElementsAre("incr k delta=5"));
  EXPECT_THAT(Parse("decr k 7 noreply\r\n"),
              ElementsAre("decr k delta=7 noreply"));
  EXPECT_THAT(Parse("incr k 18446744073709551615\r\n"),
              ElementsAre("incr k delta=18446744073709551615"));
  EXPECT_THAT(Parse("incr k -0\r\n"), ElementsAre("incr k"));
  EXPECT_THAT(Parse("incr k +5\r\n"), ElementsAre("incr k delta=5"));
}

TEST(TextParserTest, IncrDecrErrors) {
  const std::string bad = "CLIENT_ERROR invalid numeric delta argument";
  EXPECT_THAT(Parse("incr k 18446744073709551616\r\n"), ElementsAre(bad));
  EXPECT_THAT(Parse("incr k -1\r\n"), ElementsAre(bad));
  EXPECT_THAT(Parse("decr k abc\r\n"), ElementsAre(bad));
  EXPECT_THAT(Parse("incr k abc noreply\r\n"), ElementsAre(bad + " noreply"));
  EXPECT_THAT(Parse("incr k\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("incr k 1 noreply x\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("incr " + kKey251 + " 1\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
}

TEST(TextParserTest, Touch) {
  EXPECT_THAT(Parse("touch k 10\r\n"), ElementsAre("touch k exptime=10"));
  EXPECT_THAT(Parse("touch k -1 noreply\r\n"),
              ElementsAre("touch k exptime=-1 noreply"));
  EXPECT_THAT(Parse("touch k 10 junk\r\n"), ElementsAre("touch k exptime=10"));
  EXPECT_THAT(Parse("touch k abc\r\n"),
              ElementsAre("CLIENT_ERROR invalid exptime argument"));
  EXPECT_THAT(Parse("touch k 99999999999999999999\r\n"),
              ElementsAre("CLIENT_ERROR invalid exptime argument"));
  EXPECT_THAT(Parse("touch k\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("touch " + kKey251 + " 1\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
}

// --- admin commands ------------------------------------------------------

TEST(TextParserTest, FlushAll) {
  EXPECT_THAT(Parse("flush_all\r\n"), ElementsAre("flush_all"));
  EXPECT_THAT(Parse("flush_all 10\r\n"), ElementsAre("flush_all delay=10"));
  EXPECT_THAT(Parse("flush_all -5\r\n"), ElementsAre("flush_all delay=-5"));
  EXPECT_THAT(Parse("flush_all noreply\r\n"), ElementsAre("flush_all noreply"));
  EXPECT_THAT(Parse("flush_all 10 noreply\r\n"),
              ElementsAre("flush_all delay=10 noreply"));
  EXPECT_THAT(Parse("flush_all 10 junk\r\n"),
              ElementsAre("flush_all delay=10"));
  EXPECT_THAT(Parse("flush_all abc\r\n"),
              ElementsAre("CLIENT_ERROR invalid exptime argument"));
  EXPECT_THAT(Parse("flush_all 1 2 3\r\n"), ElementsAre("ERROR"));
}

TEST(TextParserTest, VersionAndQuitIgnoreArguments) {
  EXPECT_THAT(Parse("version\r\n"), ElementsAre("version"));
  EXPECT_THAT(Parse("version foo\r\n"), ElementsAre("version"));
  EXPECT_THAT(Parse("quit\r\n"), ElementsAre("quit"));
  EXPECT_THAT(Parse("quit now please\r\n"), ElementsAre("quit"));
}

TEST(TextParserTest, Verbosity) {
  EXPECT_THAT(Parse("verbosity 1\r\n"), ElementsAre("verbosity verbosity=1"));
  EXPECT_THAT(Parse("verbosity 0 noreply\r\n"),
              ElementsAre("verbosity noreply"));
  EXPECT_THAT(Parse("verbosity 1 junk\r\n"),
              ElementsAre("verbosity verbosity=1"));
  EXPECT_THAT(Parse("verbosity x\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("verbosity 4294967296\r\n"),
              ElementsAre("CLIENT_ERROR bad command line format"));
  EXPECT_THAT(Parse("verbosity\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("verbosity 1 2 3\r\n"), ElementsAre("ERROR"));
}

TEST(TextParserTest, Stats) {
  EXPECT_THAT(Parse("stats\r\n"), ElementsAre("stats"));
  EXPECT_THAT(Parse("stats items\r\n"), ElementsAre("stats group=items"));
  EXPECT_THAT(Parse("stats detail on\r\n"),
              ElementsAre("stats on group=detail"));
  EXPECT_THAT(Parse("stats cachedump 1 2\r\n"),
              ElementsAre("stats 1 2 group=cachedump"));
}

TEST(TextParserTest, CacheMemlimit) {
  EXPECT_THAT(Parse("cache_memlimit 100\r\n"),
              ElementsAre("cache_memlimit memlimit=100"));
  EXPECT_THAT(Parse("cache_memlimit 100 noreply\r\n"),
              ElementsAre("cache_memlimit memlimit=100 noreply"));
  EXPECT_THAT(Parse("cache_memlimit 100 junk\r\n"),
              ElementsAre("cache_memlimit memlimit=100"));
  // memcached answers a bad number here with a bare ERROR.
  EXPECT_THAT(Parse("cache_memlimit abc\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("cache_memlimit abc noreply\r\n"),
              ElementsAre("ERROR noreply"));
  EXPECT_THAT(Parse("cache_memlimit\r\n"), ElementsAre("ERROR"));
  // At most 2^32-1 megabytes (memcached's uint32), so the limit in bytes
  // cannot wrap: 2^44 << 20 would be a limit of 0.
  EXPECT_THAT(Parse("cache_memlimit 4294967295\r\n"),
              ElementsAre("cache_memlimit memlimit=4294967295"));
  EXPECT_THAT(Parse("cache_memlimit 4294967296\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("cache_memlimit 17592186044416\r\n"), ElementsAre("ERROR"));
}

// --- lines ---------------------------------------------------------------

TEST(TextParserTest, EmptyAndUnknownLines) {
  EXPECT_THAT(Parse("\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("   \r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("\r\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("g\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("foo bar\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("GET k\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("getx k\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("mg k v\r\n"), ElementsAre("ERROR"));
  EXPECT_THAT(Parse("shutdown\r\n"), ElementsAre("ERROR"));
}

TEST(TextParserTest, CarriageReturnBeforeNewlineOnly) {
  // "1\r" still reads as 1: strtol() stops at a space-like byte.
  EXPECT_THAT(Parse("set k 0 0 1\r\r\nz\r\n"),
              ElementsAre("set k value=\"z\""));
  EXPECT_THAT(Parse("get k \r\n"), ElementsAre("get k"));
}

TEST(TextParserTest, IncompleteLineWaits) {
  const FeedTranscript<std::string> t = FeedWithSplits("get a b");
  EXPECT_THAT(t.outcomes, IsEmpty());
  EXPECT_EQ(t.unconsumed, 7u);
}

TEST(TextParserTest, LongCommandLineCloses) {
  // Up to kMaxTextLineLength bytes before the "\n" are fine...
  std::string line = "version";
  line.resize(kMaxTextLineLength, ' ');
  EXPECT_THAT(Parse(line + "\n"), ElementsAre("version"));
  line.back() = '\r';
  EXPECT_THAT(Parse(line + "\n"), ElementsAre("version"));
  // ...one more closes the connection, silently like memcached, whether or
  // not the newline has arrived.
  line += ' ';
  EXPECT_THAT(FeedWithSplits(line + "\r\nversion\r\n").outcomes,
              ElementsAre("CLOSE"));
  EXPECT_THAT(FeedWithSplits(line).outcomes, ElementsAre("CLOSE"));
  EXPECT_THAT(FeedWithSplits(std::string(kMaxTextLineLength, 'x')).outcomes,
              IsEmpty());
  EXPECT_THAT(FeedWithSplits(std::string(kMaxTextLineLength + 1, 'x')).outcomes,
              ElementsAre("CLOSE"));
}

std::string ManyKeys(size_t min_length) {
  std::string keys;
  for (int i = 0; keys.size() < min_length; ++i) {
    absl::StrAppend(&keys, " key", i);
  }
  return keys;
}

TEST(TextParserTest, LongRetrievalLinesAreAllowed) {
  const std::string keys = ManyKeys(3 * kMaxTextLineLength);
  for (absl::string_view command : {"get", "gets", "gat 5"}) {
    const std::string line = absl::StrCat(command, keys, "\r\n");
    const std::vector<std::string> outcomes =
        FeedWithSplits(line, {}, SplitOptions{7, false}).outcomes;
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_EQ(outcomes[0],
              absl::StrCat(command == "gat 5" ? "gat" : command, keys,
                           command == "gat 5" ? " exptime=5" : ""));
  }
  // Up to 100 leading spaces, as memcached allows.
  EXPECT_THAT(FeedWithSplits(std::string(100, ' ') + "get" + keys + "\r\n", {},
                             SplitOptions{13, false})
                  .outcomes,
              ElementsAre(absl::StrCat("get", keys)));
  EXPECT_THAT(FeedWithSplits(std::string(101, ' ') + "get" + keys + "\r\n", {},
                             SplitOptions{13, false})
                  .outcomes,
              ElementsAre("CLOSE"));
  // The space after the command is part of the test.
  EXPECT_THAT(
      FeedWithSplits("getx" + keys + "\r\n", {}, SplitOptions{13, false})
          .outcomes,
      ElementsAre("CLOSE"));
}

TEST(TextParserTest, RetrievalLineBound) {
  const std::string keys = ManyKeys(kMaxRetrievalLineLength);
  std::string line = ("get" + keys).substr(0, kMaxRetrievalLineLength);
  line.back() = 'x';  // not a space
  const SplitOptions sparse{kMaxRetrievalLineLength / 7, false};
  OneParse p = ParseOnce(line + "\n");
  EXPECT_EQ(p.result.status, ParseStatus::kOk);
  EXPECT_EQ(p.consumed, kMaxRetrievalLineLength + 1);
  EXPECT_THAT(FeedWithSplits(line, {}, sparse).outcomes, IsEmpty());
  line += "y";
  EXPECT_THAT(FeedWithSplits(line + "\r\n", {}, sparse).outcomes,
              ElementsAre("CLOSE"));
  EXPECT_THAT(FeedWithSplits(line, {}, sparse).outcomes, ElementsAre("CLOSE"));
}

// --- API -----------------------------------------------------------------

TEST(TextParserTest, RequestIsClearedAndReused) {
  Request request;
  size_t consumed;
  const std::string multiget = "get" + ManyKeys(1000) + "\r\n";
  ASSERT_EQ(ParseText(multiget, {}, &consumed, &request).status,
            ParseStatus::kOk);
  const size_t capacity = request.keys.capacity();
  const void* storage = request.keys.data();
  ASSERT_EQ(
      ParseText("set k 1 2 1 noreply\r\nx\r\n", {}, &consumed, &request).status,
      ParseStatus::kOk);
  ASSERT_EQ(ParseText("incr j 3\r\n", {}, &consumed, &request).status,
            ParseStatus::kOk);
  EXPECT_THAT(request.keys, ElementsAre("j"));
  EXPECT_EQ(request.delta, 3u);
  EXPECT_EQ(request.flags, 0u);
  EXPECT_EQ(request.exptime, 0);
  EXPECT_FALSE(request.noreply);
  EXPECT_TRUE(request.value.empty());
  // No reallocation: the multiget's key storage is kept.
  EXPECT_EQ(request.keys.capacity(), capacity);
  EXPECT_EQ(static_cast<const void*>(request.keys.data()), storage);
}

TEST(TextParserTest, ConsumedCountsTheLine) {
  OneParse p = ParseOnce("get a\r\nget b\r\n");
  EXPECT_EQ(p.consumed, 7u);
  p = ParseOnce("get a\nget b\r\n");
  EXPECT_EQ(p.consumed, 6u);
  p = ParseOnce("bogus\r\nget b\r\n");
  EXPECT_EQ(p.result.status, ParseStatus::kError);
  EXPECT_EQ(p.consumed, 7u);
  p = ParseOnce("set k 0 0 1\r\nx\r\nget b\r\n");
  EXPECT_EQ(p.consumed, 16u);
  EXPECT_EQ(p.request.value, "x");
}

TEST(TextParserTest, CommandNames) {
#define MEMSHARD_CHECK_NAME(name, wire) \
  EXPECT_EQ(CommandName(Command::name), wire);
  MEMSHARD_TEXT_COMMANDS(MEMSHARD_CHECK_NAME)
#undef MEMSHARD_CHECK_NAME
  EXPECT_EQ(CommandName(Command::kNone), "");
}

TEST(TextParserTest, EveryWireNameParses) {
  // Each command name in the table is recognised (whatever its arguments
  // make of it), so the table and the lookup cannot drift apart.
#define MEMSHARD_CHECK_LOOKUP(name, wire)                         \
  {                                                               \
    OneParse p = ParseOnce(absl::StrCat(wire, " a b c d e\r\n")); \
    EXPECT_EQ(p.request.command, Command::name) << wire;          \
  }
  MEMSHARD_TEXT_COMMANDS(MEMSHARD_CHECK_LOOKUP)
#undef MEMSHARD_CHECK_LOOKUP
}

}  // namespace
}  // namespace memshard
