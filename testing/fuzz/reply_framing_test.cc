#include "testing/fuzz/reply_framing.h"

#include <string>

#include "absl/base/internal/endian.h"
#include "gtest/gtest.h"

namespace memshard::fuzz {
namespace {

TEST(CheckAsciiReplies, AcceptsEveryReplyKind) {
  EXPECT_TRUE(CheckAsciiReplies("").ok());
  EXPECT_TRUE(CheckAsciiReplies("VALUE foo 5 3\r\nbar\r\n"
                                "VALUE k 0 0 77\r\n\r\nEND\r\n"
                                "STORED\r\nNOT_STORED\r\nEXISTS\r\n"
                                "NOT_FOUND\r\nDELETED\r\nTOUCHED\r\nOK\r\n"
                                "ERROR\r\nCLIENT_ERROR bad data chunk\r\n"
                                "SERVER_ERROR out of memory\r\n"
                                "VERSION 1.6.0\r\nSTAT pid 1\r\nRESET\r\n"
                                "18446744073709551615\r\n"
                                "MEMLIMIT_TOO_SMALL cannot set maxbytes\r\n")
                  .ok());
  EXPECT_TRUE(CheckAsciiReplies("HD\r\nHD c5 Oab\r\nVA 2 s2 kfoo\r\nhi\r\n"
                                "EN\r\nNF\r\nNS\r\nEX\r\nMN\r\n"
                                "VA 3\r\n\r\n\r\r\n"
                                "ME foo exp=-1 la=0 cas=1 fetch=no\r\n")
                  .ok());
}

TEST(CheckAsciiReplies, RejectsBrokenFraming) {
  EXPECT_FALSE(CheckAsciiReplies("STORED").ok());
  EXPECT_FALSE(CheckAsciiReplies("STORED\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("STORED\r\nEN").ok());
  EXPECT_FALSE(CheckAsciiReplies("BOGUS\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("STORED please\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("CLIENT_ERROR\r\n").ok());
  // Blocks shorter or longer than announced.
  EXPECT_FALSE(CheckAsciiReplies("VALUE foo 0 3\r\nba\r\nEND\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("VALUE foo 0 3\r\nbarr\r\nEND\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("VALUE foo 0 3\r\nbar").ok());
  EXPECT_FALSE(CheckAsciiReplies("VA 1 k\r\nxx\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("VALUE foo x 3\r\nbar\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("VALUE foo 4294967296 3\r\nbar\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("HD 5\r\n").ok());
  EXPECT_FALSE(CheckAsciiReplies("18446744073709551616\r\n").ok());
}

std::string Response(uint8_t magic, uint16_t status, uint8_t extras,
                     uint16_t key, uint32_t body, std::string payload) {
  char h[24] = {};
  h[0] = static_cast<char>(magic);
  absl::big_endian::Store16(h + 2, key);
  h[4] = static_cast<char>(extras);
  absl::big_endian::Store16(h + 6, status);
  absl::big_endian::Store32(h + 8, body);
  return std::string(h, sizeof(h)) + payload;
}

TEST(CheckBinaryReplies, AcceptsWholeResponses) {
  EXPECT_TRUE(CheckBinaryReplies("").ok());
  EXPECT_TRUE(CheckBinaryReplies(Response(0x81, 0, 4, 3, 9, "ffffkeyvv") +
                                 Response(0x81, 1, 0, 0, 9, "Not found"))
                  .ok());
}

TEST(CheckBinaryReplies, RejectsBrokenFraming) {
  EXPECT_FALSE(CheckBinaryReplies(Response(0x80, 0, 0, 0, 0, "")).ok());
  EXPECT_FALSE(CheckBinaryReplies(Response(0x81, 0, 0, 0, 4, "abc")).ok());
  EXPECT_FALSE(CheckBinaryReplies(Response(0x81, 0, 4, 1, 4, "abcd")).ok());
  EXPECT_FALSE(CheckBinaryReplies(Response(0x81, 0x99, 0, 0, 0, "")).ok());
  EXPECT_FALSE(
      CheckBinaryReplies(Response(0x81, 0, 0, 0, 0, "").substr(0, 20)).ok());
}

}  // namespace
}  // namespace memshard::fuzz
