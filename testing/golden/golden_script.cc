#include "testing/golden/golden_script.h"

#include <cctype>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "testing/blocking_client.h"

namespace memshard::golden {
namespace {

constexpr char kMainConnection[] = "main";
// Bytes of a reply quoted in a failure message.
constexpr size_t kQuoteLimit = 300;
// Longest "! sleep": scripts must stay fast, yet outwait a TTL with slack
// for memcached's once-a-second clock (see expiry.txt).
constexpr double kMaxSleepSeconds = 8;

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c));
}

bool IsName(absl::string_view s) {
  if (s.empty() || !IsNameStart(s[0])) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

std::string Quote(absl::string_view bytes) {
  if (bytes.size() <= kQuoteLimit)
    return absl::StrCat("\"", absl::CEscape(bytes), "\"");
  return absl::StrCat("\"", absl::CEscape(bytes.substr(0, kQuoteLimit)),
                      "\"... (", bytes.size(), " bytes)");
}

void AppendLiteral(std::vector<Piece>* pieces, absl::string_view text) {
  if (text.empty()) return;
  if (!pieces->empty() && pieces->back().kind == Piece::Kind::kLiteral) {
    pieces->back().text.append(text.data(), text.size());
    return;
  }
  Piece piece;
  piece.text = std::string(text);
  pieces->push_back(std::move(piece));
}

// Parses the payload of a "> " or "< " line (or a stats value).
class PayloadParser {
 public:
  PayloadParser(bool expect, std::set<std::string>* bound)
      : expect_(expect), bound_(bound) {}

  absl::Status Parse(absl::string_view text, std::vector<Piece>* pieces) {
    std::string literal;
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '\\') {
        if (++i == text.size())
          return absl::InvalidArgumentError("'\\' at end of line");
        absl::Status s = Escape(text, &i, &literal);
        if (!s.ok()) return s;
      } else if (c == '{') {
        // The closing brace; escaped characters inside are skipped.
        size_t close = i + 1;
        while (close < text.size() && text[close] != '}') {
          close += text[close] == '\\' ? 2 : 1;
        }
        if (close >= text.size()) {
          return absl::InvalidArgumentError(
              "'{' without '}' (write \\{ for a brace)");
        }
        AppendLiteral(pieces, literal);
        literal.clear();
        absl::Status s = Brace(text.substr(i + 1, close - i - 1), pieces);
        if (!s.ok()) return s;
        i = close;
      } else if (c == '}') {
        return absl::InvalidArgumentError(
            "'}' without '{' (write \\} for a brace)");
      } else {
        literal.push_back(c);
      }
    }
    AppendLiteral(pieces, literal);
    return absl::OkStatus();
  }

 private:
  static absl::Status Escape(absl::string_view text, size_t* i,
                             std::string* out) {
    switch (text[*i]) {
      case 'r':
        out->push_back('\r');
        return absl::OkStatus();
      case 'n':
        out->push_back('\n');
        return absl::OkStatus();
      case 't':
        out->push_back('\t');
        return absl::OkStatus();
      case 's':
        out->push_back(' ');
        return absl::OkStatus();
      case '0':
        out->push_back('\0');
        return absl::OkStatus();
      case '\\':
      case '{':
      case '}':
        out->push_back(text[*i]);
        return absl::OkStatus();
      case 'x': {
        int value = 0;
        if (*i + 2 >= text.size()) {
          return absl::InvalidArgumentError("\\x needs two hex digits");
        }
        for (int k = 1; k <= 2; ++k) {
          const char h = text[*i + k];
          if (!std::isxdigit(static_cast<unsigned char>(h))) {
            return absl::InvalidArgumentError("\\x needs two hex digits");
          }
          value =
              value * 16 +
              (std::isdigit(static_cast<unsigned char>(h))
                   ? h - '0'
                   : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
        }
        out->push_back(static_cast<char>(value));
        *i += 2;
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown escape \\", text.substr(*i, 1)));
    }
  }

  absl::Status Brace(absl::string_view inner, std::vector<Piece>* pieces) {
    Piece piece;
    if (inner == "*") {
      if (!expect_)
        return absl::InvalidArgumentError("{*} only in expected lines");
      piece.kind = Piece::Kind::kAnyText;
      pieces->push_back(std::move(piece));
      return absl::OkStatus();
    }
    if (absl::StartsWith(inner, "=")) {
      if (!expect_)
        return absl::InvalidArgumentError("{=name} only in expected lines");
      inner.remove_prefix(1);
      if (!IsName(inner) || inner == "now") {
        return absl::InvalidArgumentError(
            absl::StrCat("bad capture name '", inner, "'"));
      }
      piece.kind = Piece::Kind::kCapture;
      piece.text = std::string(inner);
      bound_->insert(piece.text);
      pieces->push_back(std::move(piece));
      return absl::OkStatus();
    }
    // {N~M}: a number from N to M, for what a second's tick may change (a
    // TTL left).
    if (const size_t tilde = inner.find('~');
        tilde != absl::string_view::npos) {
      if (!expect_)
        return absl::InvalidArgumentError("{N~M} only in expected lines");
      if (!absl::SimpleAtoi(inner.substr(0, tilde), &piece.low) ||
          !absl::SimpleAtoi(inner.substr(tilde + 1), &piece.high) ||
          piece.low > piece.high) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad range {", inner, "}"));
      }
      piece.kind = Piece::Kind::kRange;
      pieces->push_back(std::move(piece));
      return absl::OkStatus();
    }
    // {N*text}: text repeated N times.
    if (!inner.empty() && std::isdigit(static_cast<unsigned char>(inner[0]))) {
      const size_t star = inner.find('*');
      uint64_t count = 0;
      if (star == absl::string_view::npos || star + 1 == inner.size() ||
          !absl::SimpleAtoi(inner.substr(0, star), &count) ||
          count > (256u << 20)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad repetition {", inner, "}"));
      }
      std::string unit;
      const absl::string_view raw = inner.substr(star + 1);
      for (size_t k = 0; k < raw.size(); ++k) {
        if (raw[k] != '\\') {
          unit.push_back(raw[k]);
          continue;
        }
        if (++k == raw.size()) {
          return absl::InvalidArgumentError("'\\' at end of repetition");
        }
        absl::Status s = Escape(raw, &k, &unit);
        if (!s.ok()) return s;
      }
      std::string repeated;
      repeated.reserve(count * unit.size());
      for (uint64_t k = 0; k < count; ++k)
        repeated.append(unit.data(), unit.size());
      AppendLiteral(pieces, repeated);
      return absl::OkStatus();
    }
    // {name}, {name+N}, {name-N}.
    size_t sign = inner.find_first_of("+-");
    absl::string_view name = inner.substr(0, sign);
    if (sign != absl::string_view::npos) {
      int64_t offset = 0;
      if (!absl::SimpleAtoi(inner.substr(sign + 1), &offset)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad offset in {", inner, "}"));
      }
      piece.offset = inner[sign] == '-' ? -offset : offset;
    }
    if (!IsName(name))
      return absl::InvalidArgumentError(absl::StrCat("bad {", inner, "}"));
    if (name != "now" && bound_->count(std::string(name)) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "variable '", name, "' is not captured by an earlier line"));
    }
    piece.kind = Piece::Kind::kVariable;
    piece.text = std::string(name);
    pieces->push_back(std::move(piece));
    return absl::OkStatus();
  }

  const bool expect_;
  std::set<std::string>* const bound_;
};

std::vector<std::string> SplitArgs(absl::string_view text) {
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

absl::Status ParseDirective(absl::string_view text,
                            std::set<std::string>* bound, Step* step) {
  std::vector<std::string> words = SplitArgs(text);
  if (words.empty()) return absl::InvalidArgumentError("empty directive");
  const std::string& verb = words[0];
  if (verb == "conn") {
    if (words.size() != 2 || !IsName(words[1])) {
      return absl::InvalidArgumentError("usage: ! conn <name>");
    }
    step->kind = Step::Kind::kConnection;
    step->connection = words[1];
    return absl::OkStatus();
  }
  if (verb == "closed") {
    if (words.size() != 1) return absl::InvalidArgumentError("usage: ! closed");
    step->kind = Step::Kind::kClosed;
    return absl::OkStatus();
  }
  if (verb == "sleep") {
    double seconds = 0;
    if (words.size() != 2 || !absl::SimpleAtod(words[1], &seconds) ||
        seconds <= 0 || seconds > kMaxSleepSeconds) {
      return absl::InvalidArgumentError(
          absl::StrCat("usage: ! sleep <seconds>, at most ", kMaxSleepSeconds));
    }
    step->kind = Step::Kind::kSleep;
    step->sleep = absl::Seconds(seconds);
    return absl::OkStatus();
  }
  if (verb == "stats") {
    if (words.size() < 2)
      return absl::InvalidArgumentError("usage: ! stats name=value ...");
    step->kind = Step::Kind::kStats;
    for (size_t i = 1; i < words.size(); ++i) {
      const size_t eq = words[i].find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected name=value, got '", words[i], "'"));
      }
      std::vector<Piece> value;
      PayloadParser parser(/*expect=*/false, bound);
      absl::Status s =
          parser.Parse(absl::string_view(words[i]).substr(eq + 1), &value);
      if (!s.ok()) return s;
      step->stats.emplace_back(words[i].substr(0, eq), std::move(value));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown directive '! ", verb, "'"));
}

absl::Status AtLine(absl::string_view name, int line,
                    const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(name, ":", line, ": ", status.message()));
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

absl::StatusOr<Script> ParseScript(absl::string_view name,
                                   absl::string_view text) {
  Script script;
  script.name = std::string(name);
  std::set<std::string> bound;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    // Trailing blanks are invisible in an editor: write \s to send them.
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line[0] == '#') continue;
    const char kind = line[0];
    absl::string_view rest = line.substr(1);
    if (kind == '@') {
      const size_t space = rest.find(' ');
      const absl::string_view key = rest.substr(0, space);
      const absl::string_view value =
          space == absl::string_view::npos
              ? absl::string_view()
              : absl::StripAsciiWhitespace(rest.substr(space));
      if (key == "memshard-only" || key == "memcached-only") {
        if (value.empty()) {
          return AtLine(name, line_number,
                        absl::InvalidArgumentError(
                            absl::StrCat("@", key, " needs a reason")));
        }
        (key == "memshard-only" ? script.memshard_only
                                : script.memcached_only) = std::string(value);
      } else if (key == "memshard-args") {
        script.memshard_args = SplitArgs(value);
      } else if (key == "memcached-args") {
        script.memcached_args = SplitArgs(value);
      } else {
        return AtLine(name, line_number,
                      absl::InvalidArgumentError(
                          absl::StrCat("unknown header '@", key, "'")));
      }
      continue;
    }
    if (kind == '>' || kind == '<') {
      if (absl::StartsWith(rest, " ")) rest.remove_prefix(1);
      const Step::Kind step_kind =
          kind == '>' ? Step::Kind::kSend : Step::Kind::kExpect;
      std::vector<Piece> pieces;
      PayloadParser parser(kind == '<', &bound);
      absl::Status s = parser.Parse(rest, &pieces);
      if (!s.ok()) return AtLine(name, line_number, s);
      if (pieces.empty()) {
        return AtLine(name, line_number,
                      absl::InvalidArgumentError("empty line"));
      }
      if (script.steps.empty() || script.steps.back().kind != step_kind) {
        Step step;
        step.kind = step_kind;
        step.line = line_number;
        script.steps.push_back(std::move(step));
      }
      std::vector<Piece>& into = script.steps.back().pieces;
      for (Piece& piece : pieces) {
        if (piece.kind == Piece::Kind::kLiteral) {
          AppendLiteral(&into, piece.text);
        } else {
          into.push_back(std::move(piece));
        }
      }
      continue;
    }
    if (kind == '!') {
      Step step;
      step.line = line_number;
      absl::Status s = ParseDirective(rest, &bound, &step);
      if (!s.ok()) return AtLine(name, line_number, s);
      script.steps.push_back(std::move(step));
      continue;
    }
    return AtLine(
        name, line_number,
        absl::InvalidArgumentError(
            "a line starts with '>' (send), '<' (expect), '!' (directive), "
            "'@' (header) or '#' (comment)"));
  }
  if (!script.memshard_only.empty() && !script.memcached_only.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": @memshard-only and @memcached-only exclude each other"));
  }
  if (script.steps.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no steps"));
  }
  return script;
}

absl::Status PlayScript(const Script& script, int port,
                        const PlayOptions& options) {
  return Player(script, port, options).Play();
}

}  // namespace memshard::golden
