#include "server/backend/backend_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "gtest/gtest.h"

namespace memshard {
namespace backend {
namespace {

TEST(ParseBackendListTest, Forms) {
  auto list = ParseBackendList(
      "127.0.0.1:22122, 10.0.0.2:11212:5,cache-a,[::1]:11311:2,"
      "/run/memcached.sock,/tmp/m.sock:3");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 6u);
  const auto& l = *list;
  EXPECT_EQ(l[0].host, "127.0.0.1");
  EXPECT_EQ(l[0].port, 22122);
  EXPECT_EQ(l[0].weight, 1u);
  EXPECT_EQ(l[1].port, 11212);
  EXPECT_EQ(l[1].weight, 5u);
  EXPECT_EQ(l[2].host, "cache-a");
  EXPECT_EQ(l[2].port, 11211);
  EXPECT_EQ(l[3].host, "::1");
  EXPECT_EQ(l[3].port, 11311);
  EXPECT_EQ(l[3].weight, 2u);
  EXPECT_EQ(l[3].ToString(), "[::1]:11311");
  EXPECT_TRUE(l[4].is_unix());
  EXPECT_EQ(l[4].host, "/run/memcached.sock");
  EXPECT_EQ(l[5].host, "/tmp/m.sock");
  EXPECT_EQ(l[5].weight, 3u);
  EXPECT_EQ(l[0].ToString(), "127.0.0.1:22122");
}

TEST(ParseBackendListTest, Errors) {
  EXPECT_FALSE(ParseBackendList("").ok());
  EXPECT_FALSE(ParseBackendList("host:0").ok());
  EXPECT_FALSE(ParseBackendList("host:70000").ok());
  EXPECT_FALSE(ParseBackendList("host:11211:0").ok());
  EXPECT_FALSE(ParseBackendList("host:11211:x").ok());
  EXPECT_FALSE(ParseBackendList("host:1:2:3").ok());
  EXPECT_FALSE(ParseBackendList(":11211").ok());
  EXPECT_FALSE(ParseBackendList("[::1").ok());
  EXPECT_FALSE(ParseBackendList(std::string(200, '/')).ok());
}

TEST(ResolveBackendsTest, LiteralsAndUnixPaths) {
  auto list = ParseBackendList("127.0.0.1:5000,[::1]:5001,/tmp/x.sock");
  ASSERT_TRUE(list.ok());
  auto resolved = ResolveBackends(*list);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&(*resolved)[0].addr);
  EXPECT_EQ(v4->sin_family, AF_INET);
  EXPECT_EQ(ntohs(v4->sin_port), 5000);
  EXPECT_EQ((*resolved)[1].addr.ss_family, AF_INET6);
  const auto* un = reinterpret_cast<const sockaddr_un*>(&(*resolved)[2].addr);
  EXPECT_EQ(un->sun_family, AF_UNIX);
  EXPECT_STREQ(un->sun_path, "/tmp/x.sock");
}

TEST(ResolveBackendsTest, LocalhostPrefersIpv4) {
  auto list = ParseBackendList("localhost:5000");
  ASSERT_TRUE(list.ok());
  auto resolved = ResolveBackends(*list);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ((*resolved)[0].addr.ss_family, AF_INET);
}

}  // namespace
}  // namespace backend
}  // namespace memshard
