// The golden script format and player, against an in-process echo server.

#include "testing/golden/golden_script.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard::golden {
namespace {

// Echoes every byte back on each connection; closes a connection that sends
// "quit". Thread-safe to construct and destroy from one test thread.
class EchoServer {
 public:
  EchoServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
              0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~EchoServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : workers_) t.join();
  }

  int port() const { return port_; }

 private:
  void AcceptLoop() {
    for (;;) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([fd] { Serve(fd); });
    }
  }

  static void Serve(int fd) {
    char buffer[4096];
    std::string seen;
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      seen.append(buffer, n);
      if (absl::StrContains(seen, "quit")) break;
      if (write(fd, buffer, n) != n) break;
    }
    close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  // std::mutex, not absl::Mutex: Debian's absl is not built for TSan.
  std::mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

absl::Status Play(absl::string_view text) {
  absl::StatusOr<Script> script = ParseScript("test.txt", text);
  if (!script.ok()) return script.status();
  EchoServer server;
  PlayOptions options;
  options.timeout = absl::Milliseconds(500);
  return PlayScript(*script, server.port(), options);
}

TEST(ParseScriptTest, EscapesRepetitionsAndMerging) {
  absl::StatusOr<Script> script = ParseScript(
      "t", "# comment\n\n> {3*ab}\\x41\\s\\0\\\\\\{\\}\n> \\r\\n\n");
  ASSERT_TRUE(script.ok()) << script.status();
  ASSERT_EQ(script->steps.size(), 1u);
  const Step& step = script->steps[0];
  EXPECT_EQ(step.kind, Step::Kind::kSend);
  EXPECT_EQ(step.line, 3);
  ASSERT_EQ(step.pieces.size(), 1u);
  EXPECT_EQ(step.pieces[0].text, std::string("abababA \0\\{}\r\n", 14));
}

TEST(ParseScriptTest, EscapesInsideRepetitions) {
  absl::StatusOr<Script> script = ParseScript("t", "> {2*a\\r\\n}{3*\\}}\n");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(script->steps[0].pieces[0].text, "a\r\na\r\n}}}");
}

TEST(ParseScriptTest, TrailingBlanksAreDropped) {
  absl::StatusOr<Script> script = ParseScript("t", "> get a  \t\r\n");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(script->steps[0].pieces[0].text, "get a");
}

TEST(ParseScriptTest, Headers) {
  absl::StatusOr<Script> script =
      ParseScript("t",
                  "@memshard-only memcached lacks this\n"
                  "@memshard-args --workers=1 --memory_limit_mb=8\n"
                  "@memcached-args -m 8\n"
                  "> version\\r\\n\n");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(script->memshard_only, "memcached lacks this");
  EXPECT_EQ(script->memshard_args,
            (std::vector<std::string>{"--workers=1", "--memory_limit_mb=8"}));
  EXPECT_EQ(script->memcached_args, (std::vector<std::string>{"-m", "8"}));
}

TEST(ParseScriptTest, Directives) {
  absl::StatusOr<Script> script = ParseScript(
      "t",
      "< VALUE {=c}\n! conn other\n! sleep 0.5\n! stats a=1 b={c}\n! closed\n");
  ASSERT_TRUE(script.ok()) << script.status();
  ASSERT_EQ(script->steps.size(), 5u);
  EXPECT_EQ(script->steps[1].kind, Step::Kind::kConnection);
  EXPECT_EQ(script->steps[1].connection, "other");
  EXPECT_EQ(script->steps[2].sleep, absl::Milliseconds(500));
  ASSERT_EQ(script->steps[3].stats.size(), 2u);
  EXPECT_EQ(script->steps[3].stats[1].first, "b");
  EXPECT_EQ(script->steps[4].kind, Step::Kind::kClosed);
}

TEST(ParseScriptTest, RejectsMistakesWithTheLine) {
  const struct {
    const char* text;
    const char* error;
  } cases[] = {
      {"> get {x}\n", "t:1: variable 'x'"},
      {"> {*}\n", "only in expected"},
      {"> {=x}\n", "only in expected"},
      {"\n> \\q\n", "t:2: unknown escape"},
      {"> \\x4\n", "two hex digits"},
      {"> {oops\n", "without '}'"},
      {"> oops}\n", "without '{'"},
      {"! dance\n", "unknown directive"},
      {"! sleep 60\n", "at most"},
      {"get a\n", "a line starts with"},
      {"@memshard-only\n> a\n", "needs a reason"},
      {"@bogus x\n> a\n", "unknown header"},
      {"@memshard-only a\n@memcached-only b\n> a\n", "exclude each other"},
      {"# nothing\n", "no steps"},
      {"> \\s\n> \n", "t:2: empty line"},
      {"> {1~2}\n", "only in expected"},
      {"< {2~1}\n", "bad range"},
      {"< {a~1}\n", "bad range"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Script> script = ParseScript("t", c.text);
    ASSERT_FALSE(script.ok()) << c.text;
    EXPECT_TRUE(absl::StrContains(script.status().message(), c.error))
        << c.text << " -> " << script.status();
  }
}

TEST(PlayScriptTest, MatchesExactBytes) {
  EXPECT_TRUE(Play("> hello\\r\\n\n< hello\\r\\n\n").ok());
}

TEST(PlayScriptTest, ReportsAWrongReplyWithLineAndBytes) {
  absl::Status status = Play("> hello\\r\\n\n# two\n< bye\\r\\n\n");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "test.txt:3: wrong reply"))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "hello\\r\\n")) << status;
}

TEST(PlayScriptTest, ReportsAMissingReply) {
  absl::Status status = Play("> ab\n< abc\n");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "no reply")) << status;
}

TEST(PlayScriptTest, CapturesAndReusesNumbers) {
  absl::Status status = Play(
      "> VALUE k 0 1 123\\r\\n\n< VALUE k 0 1 {=c}\\r\\n\n"
      "> {c} {c+1} {c-3}\\r\\n\n< 123 124 120\\r\\n\n< \n");
  // The last "< " line is empty: a parse error, reported as such.
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(Play("> VALUE k 0 1 123\\r\\n\n< VALUE k 0 1 {=c}\\r\\n\n"
                   "> {c} {c+1} {c-3}\\r\\n\n< 123 124 120\\r\\n\n")
                  .ok());
}

TEST(PlayScriptTest, AnyTextStopsAtTheLineEnd) {
  EXPECT_TRUE(
      Play("> VERSION 1.2.3\\r\\nEND\\r\\n\n< VERSION {*}\\r\\nEND\\r\\n\n")
          .ok());
  EXPECT_FALSE(Play("> 12a\\r\\n\n< {=n}\\r\\n\n").ok());
}

TEST(PlayScriptTest, RangeTakesANumberWithinItsBounds) {
  EXPECT_TRUE(Play("> VA t59 X\\r\\n\n< VA t{59~60} X\\r\\n\n").ok());
  EXPECT_TRUE(Play("> VA t60 X\\r\\n\n< VA t{59~60} X\\r\\n\n").ok());
  for (const char* out_of_range : {"t58", "t61", "t600", "t X"}) {
    absl::Status status = Play(
        absl::StrCat("> VA ", out_of_range, "\\r\\n\n< VA t{59~60}\\r\\n\n"));
    EXPECT_FALSE(status.ok()) << out_of_range;
  }
  absl::Status status = Play("> t61\\r\\n\n< t{59~60}\\r\\n\n");
  EXPECT_TRUE(absl::StrContains(status.message(), "number out of range"))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "{59~60}")) << status;
}

TEST(PlayScriptTest, NowIsUnixTime) {
  EXPECT_TRUE(Play("> {now+100}\\r\\n\n< {now+100}\\r\\n\n").ok());
}

TEST(PlayScriptTest, ClosedAndUnexpectedBytes) {
  EXPECT_TRUE(Play("> quit\\r\\n\n! closed\n").ok());
  absl::Status status = Play("> hello\\r\\n\n! closed\n");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "hello")) << status;
  status = Play("> a\\r\\nb\\r\\n\n< a\\r\\n\n");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(
      absl::StrContains(status.message(), "does not expect: \"b\\r\\n\""))
      << status;
}

TEST(PlayScriptTest, SeveralConnections) {
  EXPECT_TRUE(
      Play("> one\n! conn other\n> two\n< two\n! conn main\n< one\n").ok());
}

}  // namespace
}  // namespace memshard::golden
