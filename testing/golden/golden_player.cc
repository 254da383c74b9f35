// PlayScript (golden_script.h): plays a parsed script against a server.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "testing/blocking_client.h"
#include "testing/golden/golden_script.h"

namespace memshard::golden {
namespace {

using internal::AtLine;
using internal::kMainConnection;

// Bytes of a reply quoted in a failure message.
constexpr size_t kQuoteLimit = 300;

std::string Quote(absl::string_view bytes) {
  if (bytes.size() <= kQuoteLimit)
    return absl::StrCat("\"", absl::CEscape(bytes), "\"");
  return absl::StrCat("\"", absl::CEscape(bytes.substr(0, kQuoteLimit)),
                      "\"... (", bytes.size(), " bytes)");
}

// One connection of a playing script; `pushback` holds bytes read ahead.
struct Connection {
  std::unique_ptr<BlockingClient> client;
  std::string pushback;
};

class Player {
 public:
  Player(const Script& script, int port, const PlayOptions& options)
      : script_(script), port_(port), options_(options) {}

  absl::Status Play() {
    absl::Status s = Use(kMainConnection);
    if (!s.ok()) return s;
    std::string pending;  // Bytes of consecutive send steps, one write.
    int pending_line = 0;
    for (const Step& step : script_.steps) {
      if (step.kind == Step::Kind::kSend) {
        if (pending.empty()) pending_line = step.line;
        absl::StatusOr<std::string> bytes = Resolve(step.pieces);
        if (!bytes.ok()) return AtLine(script_.name, step.line, bytes.status());
        pending += *bytes;
        continue;
      }
      if (!pending.empty()) {
        s = current_->client->TrySend(pending);
        if (!s.ok()) return AtLine(script_.name, pending_line, s);
        pending.clear();
      }
      s = Run(step);
      if (!s.ok()) return AtLine(script_.name, step.line, s);
    }
    if (!pending.empty()) {
      s = current_->client->TrySend(pending);
      if (!s.ok()) return AtLine(script_.name, pending_line, s);
    }
    for (auto& [name, connection] : connections_) {
      if (connection.client == nullptr) continue;
      std::string extra = std::move(connection.pushback);
      Drain(connection, &extra);
      if (!extra.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            script_.name, ": connection '", name,
            "' received bytes the script does not expect: ", Quote(extra)));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Use(const std::string& name) {
    Connection& connection = connections_[name];
    if (connection.client == nullptr) {
      absl::StatusOr<std::unique_ptr<BlockingClient>> client =
          BlockingClient::ConnectTcp(port_, options_.timeout);
      if (!client.ok()) return client.status();
      connection.client = *std::move(client);
    }
    current_ = &connection;
    return absl::OkStatus();
  }

  absl::Status Run(const Step& step) {
    switch (step.kind) {
      case Step::Kind::kSend:
        return absl::InternalError("send steps are batched");
      case Step::Kind::kExpect:
        return Expect(step.pieces);
      case Step::Kind::kClosed:
        return ExpectClosed();
      case Step::Kind::kSleep:
        absl::SleepFor(step.sleep);
        return absl::OkStatus();
      case Step::Kind::kConnection:
        return Use(step.connection);
      case Step::Kind::kStats:
        return ExpectStats(step.stats);
    }
    return absl::InternalError("unknown step");
  }

  absl::StatusOr<std::string> Resolve(const std::vector<Piece>& pieces) const {
    std::string out;
    for (const Piece& piece : pieces) {
      if (piece.kind == Piece::Kind::kLiteral) {
        out += piece.text;
        continue;
      }
      absl::StatusOr<std::string> value = Value(piece);
      if (!value.ok()) return value.status();
      out += *value;
    }
    return out;
  }

  absl::StatusOr<std::string> Value(const Piece& piece) const {
    if (piece.text == "now") {
      return absl::StrCat(absl::ToUnixSeconds(absl::Now()) + piece.offset);
    }
    auto it = variables_.find(piece.text);
    if (it == variables_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("variable '", piece.text, "' is unset"));
    }
    if (piece.offset == 0) return it->second;
    uint64_t number = 0;
    if (!absl::SimpleAtoi(it->second, &number)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "variable '", piece.text, "' = '", it->second, "' is not a number"));
    }
    return absl::StrCat(number + static_cast<uint64_t>(piece.offset));
  }

  // Reads exactly n bytes (pushback first).
  absl::Status Read(size_t n, std::string* out) {
    const size_t from_pushback = std::min(n, current_->pushback.size());
    out->append(current_->pushback, 0, from_pushback);
    current_->pushback.erase(0, from_pushback);
    if (from_pushback == n) return absl::OkStatus();
    absl::StatusOr<std::string> bytes =
        current_->client->TryReadExactly(n - from_pushback);
    if (!bytes.ok()) return bytes.status();
    out->append(*bytes);
    return absl::OkStatus();
  }

  // Whatever else arrives within the quiet period, for failure messages.
  void Drain(Connection& connection, std::string* out) {
    while (out->size() < 4 * kQuoteLimit &&
           connection.client->HasData(options_.quiet_period)) {
      absl::StatusOr<std::string> byte = connection.client->TryReadExactly(1);
      if (!byte.ok()) break;
      out->append(*byte);
    }
  }

  static std::string Describe(const std::vector<Piece>& pieces) {
    std::string out;
    for (const Piece& piece : pieces) {
      switch (piece.kind) {
        case Piece::Kind::kLiteral:
          out += absl::CEscape(piece.text.size() > kQuoteLimit
                                   ? piece.text.substr(0, kQuoteLimit) + "..."
                                   : piece.text);
          break;
        case Piece::Kind::kVariable:
          absl::StrAppend(
              &out, "{", piece.text,
              piece.offset == 0 ? "" : (piece.offset > 0 ? "+" : ""),
              piece.offset == 0 ? std::string() : absl::StrCat(piece.offset),
              "}");
          break;
        case Piece::Kind::kCapture:
          absl::StrAppend(&out, "{=", piece.text, "}");
          break;
        case Piece::Kind::kAnyText:
          out += "{*}";
          break;
        case Piece::Kind::kRange:
          absl::StrAppend(&out, "{", piece.low, "~", piece.high, "}");
          break;
      }
    }
    return out;
  }

  absl::Status Mismatch(const std::vector<Piece>& pieces, std::string got,
                        absl::string_view why) {
    Drain(*current_, &got);
    return absl::FailedPreconditionError(
        absl::StrCat(why, "\n  expected: \"", Describe(pieces),
                     "\"\n  received: ", Quote(got)));
  }

  absl::Status Expect(const std::vector<Piece>& pieces) {
    std::string got;
    for (const Piece& piece : pieces) {
      switch (piece.kind) {
        case Piece::Kind::kLiteral:
        case Piece::Kind::kVariable: {
          std::string want = piece.text;
          if (piece.kind == Piece::Kind::kVariable) {
            absl::StatusOr<std::string> value = Value(piece);
            if (!value.ok()) return value.status();
            want = *value;
          }
          const size_t start = got.size();
          absl::Status s = Read(want.size(), &got);
          if (!s.ok())
            return Mismatch(pieces, got,
                            absl::StrCat("no reply: ", s.message()));
          if (absl::string_view(got).substr(start) != want) {
            return Mismatch(pieces, got, "wrong reply");
          }
          break;
        }
        case Piece::Kind::kCapture:
        case Piece::Kind::kRange:
        case Piece::Kind::kAnyText: {
          const bool digits = piece.kind != Piece::Kind::kAnyText;
          std::string value;
          for (;;) {
            std::string byte;
            absl::Status s = Read(1, &byte);
            if (!s.ok())
              return Mismatch(pieces, got + value,
                              absl::StrCat("no reply: ", s.message()));
            const char c = byte[0];
            const bool take =
                digits ? std::isdigit(static_cast<unsigned char>(c)) != 0
                       : (c != '\r' && c != '\n');
            if (!take) {
              current_->pushback.insert(0, byte);
              break;
            }
            value += byte;
          }
          got += value;
          if (digits) {
            if (value.empty()) return Mismatch(pieces, got, "expected digits");
            if (piece.kind == Piece::Kind::kCapture) {
              variables_[piece.text] = value;
            } else if (uint64_t number = 0; !absl::SimpleAtoi(value, &number) ||
                                            number < piece.low ||
                                            number > piece.high) {
              return Mismatch(pieces, got, "number out of range");
            }
          }
          break;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status ExpectClosed() {
    if (!current_->pushback.empty() ||
        !current_->client->PeerClosed(options_.timeout)) {
      std::string got = std::move(current_->pushback);
      Drain(*current_, &got);
      return absl::FailedPreconditionError(
          absl::StrCat("expected the server to close the connection; received ",
                       Quote(got), got.empty() ? " and it stayed open" : ""));
    }
    current_->client.reset();
    return absl::OkStatus();
  }

  absl::Status ExpectStats(
      const std::vector<std::pair<std::string, std::vector<Piece>>>& wanted) {
    absl::Status s = current_->client->TrySend("stats\r\n");
    if (!s.ok()) return s;
    std::map<std::string, std::string> stats;
    for (;;) {
      std::string line;
      // Lines are short: read byte by byte through the pushback.
      for (;;) {
        std::string byte;
        s = Read(1, &byte);
        if (!s.ok())
          return absl::FailedPreconditionError(
              absl::StrCat("stats: ", s.message()));
        line += byte;
        if (absl::EndsWith(line, "\r\n")) break;
      }
      line.resize(line.size() - 2);
      if (line == "END") break;
      std::vector<std::string> words =
          absl::StrSplit(line, absl::MaxSplits(' ', 2));
      if (words.size() != 3 || words[0] != "STAT") {
        return absl::FailedPreconditionError(
            absl::StrCat("malformed stats line ", Quote(line)));
      }
      stats[words[1]] = words[2];
    }
    for (const auto& [name, pieces] : wanted) {
      absl::StatusOr<std::string> want = Resolve(pieces);
      if (!want.ok()) return want.status();
      auto it = stats.find(name);
      if (it == stats.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("stats has no '", name, "'"));
      }
      if (it->second != *want) {
        return absl::FailedPreconditionError(absl::StrCat(
            "stat ", name, " is ", it->second, ", expected ", *want));
      }
    }
    return absl::OkStatus();
  }

  const Script& script_;
  const int port_;
  const PlayOptions options_;
  std::map<std::string, Connection> connections_;
  Connection* current_ = nullptr;
  std::map<std::string, std::string> variables_;
};

}  // namespace

absl::Status PlayScript(const Script& script, int port,
                        const PlayOptions& options) {
  return Player(script, port, options).Play();
}

}  // namespace memshard::golden
