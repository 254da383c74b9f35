#include "testing/golden/golden_script.h"

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace memshard::golden {

using internal::AtLine;

namespace {

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

absl::Status internal::AtLine(absl::string_view name, int line,
                              const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(name, ":", line, ": ", status.message()));
}

}  // namespace memshard::golden
