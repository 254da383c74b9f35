// The three protocols on one port, against the real memshard binary: text,
// meta and binary connections share one cache; the binary protocol's
// framing errors never hang or over-read; SASL PLAIN and the ascii auth
// handshake guard every protocol. Binary expectations that memcached
// shares are also checked against Debian's memcached.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/peer.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

// --- A tiny binary-protocol client -----------------------------------------

struct Packet {
  uint8_t magic = 0x80;
  uint8_t opcode = 0;
  std::string extras;
  std::string key;
  std::string value;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  uint16_t status = 0;  // responses
  // Header overrides, to build malformed requests.
  int64_t key_length = -1;
  int64_t extras_length = -1;
  int64_t body_length = -1;

  std::string Bytes() const {
    char h[24] = {};
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
    return std::string(h, 24) + extras + key + value;
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

Packet Request(uint8_t opcode, std::string key = "", std::string extras = "",
               std::string value = "", uint64_t cas = 0) {
  Packet p;
  p.opcode = opcode;
  p.key = std::move(key);
  p.extras = std::move(extras);
  p.value = std::move(value);
  p.cas = cas;
  return p;
}

constexpr uint8_t kGet = 0x00, kSet = 0x01, kAdd = 0x02, kDelete = 0x04,
                  kIncrement = 0x05, kQuit = 0x07, kGetQ = 0x09, kNoop = 0x0a,
                  kVersion = 0x0b, kGetK = 0x0c, kGetKQ = 0x0d, kAppend = 0x0e,
                  kStat = 0x10, kSetQ = 0x11, kGat = 0x1d,
                  kSaslListMechs = 0x20, kSaslAuth = 0x21;
constexpr uint16_t kKeyNotFound = 1, kKeyExists = 2, kTooLarge = 3,
                   kInvalid = 4, kAuthError = 0x20, kUnknownCommand = 0x81;

Packet SetPacket(std::string key, std::string value, uint32_t flags = 0,
                 uint32_t exptime = 0, uint64_t cas = 0) {
  return Request(kSet, std::move(key), Be32(flags) + Be32(exptime),
                 std::move(value), cas);
}

// Reads one response packet; nullopt (and a test failure) on trouble.
std::optional<Packet> ReadPacket(BlockingClient& client) {
  absl::StatusOr<std::string> header = client.TryReadExactly(24);
  if (!header.ok()) {
    ADD_FAILURE() << "reading a binary header: " << header.status();
    return std::nullopt;
  }
  const char* h = header->data();
  Packet p;
  p.magic = static_cast<uint8_t>(h[0]);
  p.opcode = static_cast<uint8_t>(h[1]);
  const uint16_t key_length = absl::big_endian::Load16(h + 2);
  const uint8_t extras_length = static_cast<uint8_t>(h[4]);
  p.status = absl::big_endian::Load16(h + 6);
  const uint32_t body_length = absl::big_endian::Load32(h + 8);
  p.opaque = absl::big_endian::Load32(h + 12);
  p.cas = absl::big_endian::Load64(h + 16);
  EXPECT_EQ(p.magic, 0x81);
  std::string body;
  if (body_length > 0) {
    absl::StatusOr<std::string> read = client.TryReadExactly(body_length);
    if (!read.ok()) {
      ADD_FAILURE() << "reading a binary body: " << read.status();
      return std::nullopt;
    }
    body = *std::move(read);
  }
  p.extras = body.substr(0, extras_length);
  p.key = body.substr(extras_length, key_length);
  p.value = body.substr(extras_length + key_length);
  return p;
}

std::optional<Packet> RoundTrip(BlockingClient& client, const Packet& p) {
  if (!client.Send(p.Bytes())) return std::nullopt;
  return ReadPacket(client);
}

std::unique_ptr<BlockingClient> Connect(const ServerProcess& server) {
  absl::StatusOr<std::unique_ptr<BlockingClient>> client = server.Connect();
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::string WriteTempFile(absl::string_view name, absl::string_view text) {
  const std::string path = TestTempPath(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

// --- One cache, three protocols -------------------------------------------

class ProtocolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::StartMemshard({"--workers=2"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ProtocolsTest, TextMetaAndBinarySeeOneCache) {
  auto text = Connect(*server_);
  auto meta = Connect(*server_);
  auto binary = Connect(*server_);
  ASSERT_TRUE(text && meta && binary);

  // Written as text, read as meta and binary, with the same CAS everywhere.
  ASSERT_EQ(text->Set("k1", "from-text", 42), "STORED");
  ASSERT_EQ(text->Command("gets k1").substr(0, 14), "VALUE k1 42 9 ");
  const std::string cas_line = text->ReadLine();  // value
  EXPECT_EQ(cas_line, "from-text");
  EXPECT_EQ(text->ReadLine(), "END");
  EXPECT_EQ(meta->Command("mg k1 v f s"), "VA 9 f42 s9");
  EXPECT_EQ(meta->ReadLine(), "from-text");
  std::string mg_cas = meta->Command("mg k1 c");
  ASSERT_EQ(mg_cas.substr(0, 4), "HD c");
  const uint64_t cas = std::stoull(mg_cas.substr(4));
  auto got = RoundTrip(*binary, Request(kGet, "k1"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 0);
  EXPECT_EQ(got->value, "from-text");
  EXPECT_EQ(got->extras, Be32(42));
  EXPECT_EQ(got->cas, cas);

  // Written as binary, read as text and meta.
  auto set = RoundTrip(*binary, SetPacket("k2", "from-binary", 7));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->status, 0);
  EXPECT_NE(set->cas, 0u);
  EXPECT_EQ(text->Get("k2"), "from-binary");
  EXPECT_EQ(meta->Command("mg k2 c f"), absl::StrCat("HD c", set->cas, " f7"));

  // Written as meta (base64 key), read as binary GetK and text.
  EXPECT_EQ(meta->Send("ms azM= 9 b F3 T0\r\nfrom-meta\r\n") &&
                meta->ReadLine() == "HD",
            true);
  auto getk = RoundTrip(*binary, Request(kGetK, "k3"));
  ASSERT_TRUE(getk);
  EXPECT_EQ(getk->key, "k3");
  EXPECT_EQ(getk->value, "from-meta");
  EXPECT_EQ(text->Get("k3"), "from-meta");

  // One counter, three protocols.
  ASSERT_EQ(text->Set("n", "10"), "STORED");
  EXPECT_EQ(text->Command("incr n 1"), "11");
  EXPECT_EQ(meta->Command("ma n v D2"), "VA 2");
  EXPECT_EQ(meta->ReadLine(), "13");
  auto incr = RoundTrip(
      *binary, Request(kIncrement, "n", Be64(3) + Be64(0) + Be32(0xffffffff)));
  ASSERT_TRUE(incr);
  EXPECT_EQ(incr->value, Be64(16));
  EXPECT_EQ(text->Get("n"), "16");

  // CAS races across protocols: a stale binary CAS loses to a meta write.
  auto before = RoundTrip(*binary, Request(kGet, "k1"));
  ASSERT_TRUE(before);
  EXPECT_EQ(meta->Send("ms k1 1\r\nx\r\n") && meta->ReadLine() == "HD", true);
  auto stale = RoundTrip(*binary, SetPacket("k1", "y", 0, 0, before->cas));
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, kKeyExists);

  // Deleted by binary, gone for all.
  auto del = RoundTrip(*binary, Request(kDelete, "k2"));
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 0);
  EXPECT_EQ(text->Get("k2"), std::nullopt);
  EXPECT_EQ(meta->Command("mg k2 v"), "EN");
  EXPECT_EQ(text->Delete("k3"), "DELETED");
  auto miss = RoundTrip(*binary, Request(kGet, "k3"));
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->status, kKeyNotFound);
  EXPECT_EQ(miss->value, "Not found");
}

// stats detail counts binary gets (per key, hit or miss), sets and deletes
// too, as memcached does; meta commands are not counted.
TEST_F(ProtocolsTest, StatsDetailCountsBinaryCommands) {
  auto text = Connect(*server_);
  auto binary = Connect(*server_);
  ASSERT_TRUE(text && binary);
  ASSERT_EQ(text->Command("stats detail on"), "OK");
  auto set = RoundTrip(*binary, SetPacket("b:1", "v"));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->status, 0);
  for (const char* key : {"b:1", "b:2"}) {
    auto get = RoundTrip(*binary, Request(kGetK, key));
    ASSERT_TRUE(get);
  }
  auto gat = RoundTrip(*binary, Request(kGat, "b:1", Be32(100)));
  ASSERT_TRUE(gat);
  EXPECT_EQ(gat->status, 0);
  auto del = RoundTrip(*binary, Request(kDelete, "b:1"));
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 0);
  ASSERT_TRUE(text->Send("mg b:1 v\r\n"));
  EXPECT_EQ(text->ReadLine(), "EN");
  EXPECT_EQ(text->Command("stats detail dump"),
            "PREFIX b get 3 hit 2 set 1 del 1");
  EXPECT_EQ(text->ReadLine(), "END");
  // The setting shows in stats settings.
  ASSERT_TRUE(text->Send("stats settings\r\n"));
  bool found = false;
  for (std::string line = text->ReadLine(); line != "END" && !line.empty();
       line = text->ReadLine()) {
    if (line == "STAT detail_enabled yes") found = true;
  }
  EXPECT_TRUE(found);
}

// Binary "detail on|off|dump" as memcached 1.6 answers them: on and off
// with just the closing empty stat; dump as one stat, "detailed", holding
// the text dump; anything else after "detail" is Key not found.
TEST_F(ProtocolsTest, BinaryStatsDetail) {
  auto text = Connect(*server_);
  auto binary = Connect(*server_);
  ASSERT_TRUE(text && binary);
  auto on = RoundTrip(*binary, Request(kStat, "detail on"));
  ASSERT_TRUE(on);
  EXPECT_EQ(on->status, 0);
  EXPECT_EQ(on->key, "");
  EXPECT_EQ(on->value, "");
  ASSERT_EQ(text->Command("set d:1 0 0 1\r\nx"), "STORED");
  ASSERT_TRUE(binary->Send(Request(kStat, "detail dump").Bytes()));
  auto dump = ReadPacket(*binary);
  ASSERT_TRUE(dump);
  EXPECT_EQ(dump->status, 0);
  EXPECT_EQ(dump->key, "detailed");
  EXPECT_EQ(dump->value, "PREFIX d get 0 hit 0 set 1 del 0\r\nEND\r\n");
  auto end = ReadPacket(*binary);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->key, "");
  EXPECT_EQ(end->value, "");
  auto off = RoundTrip(*binary, Request(kStat, "detail off"));
  ASSERT_TRUE(off);
  EXPECT_EQ(off->status, 0);
  EXPECT_EQ(off->value, "");
  ASSERT_EQ(text->Command("set d:2 0 0 1\r\nx"), "STORED");
  EXPECT_EQ(text->Command("stats detail dump"),
            "PREFIX d get 0 hit 0 set 1 del 0");
  EXPECT_EQ(text->ReadLine(), "END");
  for (const char* bad : {"detail", "detail sideways"}) {
    auto reply = RoundTrip(*binary, Request(kStat, bad));
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, kKeyNotFound) << bad;
  }
  // The connection still works.
  auto stat = RoundTrip(*binary, Request(kStat, "detail off"));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->status, 0);
}

TEST_F(ProtocolsTest, BinaryQuietPipelineEndsWithNoop) {
  auto binary = Connect(*server_);
  ASSERT_TRUE(binary);
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    Packet set = SetPacket(absl::StrCat("q", i), absl::StrCat("v", i));
    set.opcode = kSetQ;
    batch += set.Bytes();
  }
  for (int i = 0; i < 7; ++i) {  // q5 and q6 miss
    Packet get = Request(kGetKQ, absl::StrCat("q", i));
    get.opaque = 100 + i;
    batch += get.Bytes();
  }
  Packet noop = Request(kNoop);
  noop.opaque = 999;
  batch += noop.Bytes();
  ASSERT_TRUE(binary->Send(batch));
  for (int i = 0; i < 5; ++i) {
    auto hit = ReadPacket(*binary);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->opcode, kGetKQ);
    EXPECT_EQ(hit->opaque, 100u + i);
    EXPECT_EQ(hit->key, absl::StrCat("q", i));
    EXPECT_EQ(hit->value, absl::StrCat("v", i));
  }
  auto end = ReadPacket(*binary);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->opcode, kNoop);
  EXPECT_EQ(end->opaque, 999u);
  EXPECT_FALSE(binary->HasData(absl::Milliseconds(50)));
}

TEST_F(ProtocolsTest, BinaryMiscOpcodes) {
  auto binary = Connect(*server_);
  ASSERT_TRUE(binary);
  auto version = RoundTrip(*binary, Request(kVersion));
  ASSERT_TRUE(version);
  EXPECT_EQ(version->value, "1.6.0-memshard-0.1");
  auto add = RoundTrip(*binary, Request(kAdd, "a", Be32(0) + Be32(0), "1"));
  ASSERT_TRUE(add);
  EXPECT_EQ(add->status, 0);
  add = RoundTrip(*binary, Request(kAdd, "a", Be32(0) + Be32(0), "1"));
  ASSERT_TRUE(add);
  EXPECT_EQ(add->status, kKeyExists);
  auto append = RoundTrip(*binary, Request(kAppend, "a", "", "23"));
  ASSERT_TRUE(append);
  EXPECT_EQ(append->status, 0);
  auto gat = RoundTrip(*binary, Request(kGat, "a", Be32(100)));
  ASSERT_TRUE(gat);
  EXPECT_EQ(gat->value, "123");
  // incr with an initial value creates the item.
  auto created = RoundTrip(
      *binary, Request(kIncrement, "fresh", Be64(5) + Be64(40) + Be32(0)));
  ASSERT_TRUE(created);
  EXPECT_EQ(created->value, Be64(40));
  // Stats: name/value packets ending with an empty one.
  ASSERT_TRUE(binary->Send(Request(kStat).Bytes()));
  int stats = 0;
  for (;;) {
    auto stat = ReadPacket(*binary);
    ASSERT_TRUE(stat);
    if (stat->key.empty()) break;
    ++stats;
  }
  EXPECT_GT(stats, 10);
  auto unknown_group = RoundTrip(*binary, Request(kStat, "nonsense"));
  ASSERT_TRUE(unknown_group);
  EXPECT_EQ(unknown_group->status, kKeyNotFound);
  // SASL is off: its opcodes are unknown, as in memcached.
  auto mechs = RoundTrip(*binary, Request(kSaslListMechs));
  ASSERT_TRUE(mechs);
  EXPECT_EQ(mechs->status, kUnknownCommand);
  auto quit = RoundTrip(*binary, Request(kQuit));
  ASSERT_TRUE(quit);
  EXPECT_EQ(quit->status, 0);
  EXPECT_TRUE(binary->PeerClosed(absl::Seconds(2)));
}

// --- Framing errors: the same answers from memshard and memcached ---------

class BinaryFramingTest : public PeerTest {
 protected:
  BinaryFramingTest() : PeerTest({"--workers=1"}) {}

  // Sends `bytes` on a fresh connection; returns the one error response
  // and checks the server then closes.
  void ExpectErrorThenClose(const std::string& bytes, uint16_t status) {
    auto client = Connect(*server_);
    ASSERT_TRUE(client);
    ASSERT_TRUE(client->Send(bytes));
    auto reply = ReadPacket(*client);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, status);
    EXPECT_TRUE(client->PeerClosed(absl::Seconds(3)));
  }
};

TEST_P(BinaryFramingTest, KeyAndExtrasLongerThanBody) {
  // CVE-2016-8704 (append), -8705 (set), -8706 (SASL auth): the value
  // length body - key - extras would go negative.
  Packet append = Request(kAppend, "key", "", "v");
  append.body_length = 2;
  ExpectErrorThenClose(append.Bytes(), kUnknownCommand);
  Packet set = SetPacket("key", "v");
  set.body_length = 10;  // key + extras = 11
  ExpectErrorThenClose(set.Bytes(), kUnknownCommand);
  Packet sasl = Request(kSaslAuth, "PLAIN", "", "x");
  sasl.body_length = 1;
  ExpectErrorThenClose(sasl.Bytes(), kUnknownCommand);
}

TEST_P(BinaryFramingTest, InvalidLengthsForTheOpcode) {
  ExpectErrorThenClose(Request(kGet, "k", Be32(1)).Bytes(), kInvalid);
  ExpectErrorThenClose(Request(kNoop, "k").Bytes(), kInvalid);
  ExpectErrorThenClose(Request(kGet, std::string(251, 'k')).Bytes(), kInvalid);
}

TEST_P(BinaryFramingTest, UnknownOpcodeIsAnsweredAndTheConnectionGoesOn) {
  auto client = Connect(*server_);
  ASSERT_TRUE(client);
  // No body, so memcached's over-long swallow does not matter.
  Packet unknown = Request(0x3f);
  auto reply = RoundTrip(*client, unknown);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, kUnknownCommand);
  auto noop = RoundTrip(*client, Request(kNoop));
  ASSERT_TRUE(noop);
  EXPECT_EQ(noop->status, 0);
}

TEST_P(BinaryFramingTest, BadMagicClosesAfterTheFirstPacket) {
  auto client = Connect(*server_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Request(kNoop).Bytes()));
  auto noop = ReadPacket(*client);
  ASSERT_TRUE(noop);
  Packet bad = Request(kNoop);
  bad.magic = 0x81;
  ASSERT_TRUE(client->Send(bad.Bytes()));
  EXPECT_TRUE(client->PeerClosed(absl::Seconds(3)));
}

INSTANTIATE_TEST_SUITE_P(Peers, BinaryFramingTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

TEST(BinaryLimitsTest, KeyLongerThanWhatArrivedIsNotWaitedFor) {
  // memcached waits for header + key + extras bytes before it checks them
  // against the body length; memshard judges the header alone.
  auto server = ServerProcess::StartMemshard({"--workers=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Connect(**server);
  ASSERT_TRUE(client);
  Packet set = SetPacket("key", "v");
  set.key_length = 0xffff;
  ASSERT_TRUE(client->Send(set.Bytes()));
  auto reply = ReadPacket(*client);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, kUnknownCommand);
  EXPECT_TRUE(client->PeerClosed(absl::Seconds(3)));
}

TEST(BinaryLimitsTest, HugeBodyIsRefusedAtOnce) {
  // CVE-2011-4971: a body length near 2^32 must neither be waited for nor
  // buffered. memshard answers "Too large." and closes at once.
  auto server = ServerProcess::StartMemshard({"--workers=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Connect(**server);
  ASSERT_TRUE(client);
  Packet huge = SetPacket("k", "v");
  huge.body_length = 0xffffffff;
  ASSERT_TRUE(client->Send(huge.Bytes()));
  auto reply = ReadPacket(*client);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, kTooLarge);
  EXPECT_TRUE(client->PeerClosed(absl::Seconds(3)));
  // A value just over --max_item_size is refused, swallowed, and the
  // connection goes on.
  auto other = Connect(**server);
  ASSERT_TRUE(other);
  auto big =
      RoundTrip(*other, SetPacket("k", std::string(1024 * 1024 + 1, 'x')));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, kTooLarge);
  auto noop = RoundTrip(*other, Request(kNoop));
  ASSERT_TRUE(noop);
  EXPECT_EQ(noop->status, 0);
  // The server is fine.
  EXPECT_TRUE((*server)->IsRunning());
}

// --- Authentication -------------------------------------------------------

TEST(SaslTest, PlainGuardsEveryOpcode) {
  const std::string users = WriteTempFile("sasl_users", "alice:wonderland\n");
  auto server = ServerProcess::StartMemshard(
      {"--workers=1", absl::StrCat("--sasl_password_file=", users)});
  ASSERT_TRUE(server.ok()) << server.status();

  // Before authenticating: an auth error, and memcached closes.
  auto anonymous = Connect(**server);
  ASSERT_TRUE(anonymous);
  auto denied = RoundTrip(*anonymous, Request(kGet, "k"));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, kAuthError);
  EXPECT_TRUE(anonymous->PeerClosed(absl::Seconds(3)));

  auto client = Connect(**server);
  ASSERT_TRUE(client);
  auto version = RoundTrip(*client, Request(kVersion));  // allowed
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 0);
  auto mechs = RoundTrip(*client, Request(kSaslListMechs));
  ASSERT_TRUE(mechs);
  EXPECT_EQ(mechs->value, "PLAIN");
  auto bad = RoundTrip(*client, Request(kSaslAuth, "PLAIN", "",
                                        std::string("\0alice\0wrong", 12)));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, kAuthError);
  auto other_mech = RoundTrip(*client, Request(kSaslAuth, "CRAM-MD5", "", "x"));
  ASSERT_TRUE(other_mech);
  EXPECT_EQ(other_mech->status, kAuthError);
  auto good = RoundTrip(
      *client,
      Request(kSaslAuth, "PLAIN", "", std::string("\0alice\0wonderland", 17)));
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 0);
  EXPECT_EQ(good->value, "Authenticated");
  auto set = RoundTrip(*client, SetPacket("k", "v"));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->status, 0);
  auto get = RoundTrip(*client, Request(kGet, "k"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->value, "v");

  // Ascii clients must use the same credentials (no protocol bypasses).
  auto ascii = Connect(**server);
  ASSERT_TRUE(ascii);
  EXPECT_EQ(ascii->Command("get k"), "CLIENT_ERROR unauthenticated");
  std::remove(users.c_str());
}

TEST(AsciiAuthTest, AuthFileHandshake) {
  const std::string users = WriteTempFile("ascii_users", "bob:builder\n");
  auto server = ServerProcess::StartMemshard(
      {"--workers=1", absl::StrCat("--auth_file=", users)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Connect(**server);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->Command("get k"), "CLIENT_ERROR unauthenticated");
  EXPECT_EQ(client->Command("mg k v"), "CLIENT_ERROR unauthenticated");
  EXPECT_EQ(client->Command("set auth 0 0 9\r\nbob wrong"),
            "CLIENT_ERROR authentication failure");
  EXPECT_EQ(client->Command("set auth 0 0 11\r\nbob builder"), "STORED");
  EXPECT_EQ(client->Set("k", "v"), "STORED");
  EXPECT_EQ(client->Get("k"), "v");
  EXPECT_EQ(client->Command("mg k v"), "VA 1");
  EXPECT_EQ(client->ReadLine(), "v");
  // Asked on the authenticated connection: others would be refused.
  StatsMap stats = client->Stats();
  EXPECT_EQ(StatInt(stats, "auth_cmds"), 2);
  EXPECT_EQ(StatInt(stats, "auth_errors"), 1);
  // Binary clients must authenticate too, with the same list.
  auto binary = Connect(**server);
  ASSERT_TRUE(binary);
  auto denied = RoundTrip(*binary, Request(kGet, "k"));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, kAuthError);
  auto fresh = Connect(**server);
  ASSERT_TRUE(fresh);
  auto good = RoundTrip(*fresh, Request(kSaslAuth, "PLAIN", "",
                                        std::string("\0bob\0builder", 12)));
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 0);
  auto get = RoundTrip(*fresh, Request(kGet, "k"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->value, "v");
  std::remove(users.c_str());
}

}  // namespace
}  // namespace memshard
