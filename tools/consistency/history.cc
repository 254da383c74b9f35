#include "tools/consistency/history.h"

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace memshard::consistency {

const char* OpTypeName(OpType type) {
  switch (type) {
    case OpType::kGet:
      return "get";
    case OpType::kGets:
      return "gets";
    case OpType::kSet:
      return "set";
    case OpType::kAdd:
      return "add";
    case OpType::kReplace:
      return "replace";
    case OpType::kAppend:
      return "append";
    case OpType::kPrepend:
      return "prepend";
    case OpType::kCas:
      return "cas";
    case OpType::kIncr:
      return "incr";
    case OpType::kDecr:
      return "decr";
    case OpType::kDelete:
      return "delete";
  }
  return "?";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kHit:
      return "hit";
    case Outcome::kMiss:
      return "miss";
    case Outcome::kStored:
      return "STORED";
    case Outcome::kNotStored:
      return "NOT_STORED";
    case Outcome::kExists:
      return "EXISTS";
    case Outcome::kNotFound:
      return "NOT_FOUND";
    case Outcome::kDeleted:
      return "DELETED";
    case Outcome::kNumber:
      return "number";
    case Outcome::kNonNumeric:
      return "NON_NUMERIC";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string QuoteValue(const std::string& value, size_t max) {
  if (value.size() <= max)
    return absl::StrCat("'", absl::CHexEscape(value), "'");
  return absl::StrCat("'", absl::CHexEscape(value.substr(0, max)), "'...(",
                      value.size(), " bytes)");
}

std::string DescribeOp(const Op& op, int64_t origin_ns) {
  std::string out = absl::StrFormat("client %d %s key %u [%.6f, ", op.client,
                                    OpTypeName(op.type), op.key,
                                    (op.invoke_ns - origin_ns) / 1e6);
  if (op.respond_ns == Op::kNoResponse) {
    out += "no reply]";
  } else {
    absl::StrAppendFormat(&out, "%.6f] ms", (op.respond_ns - origin_ns) / 1e6);
  }
  switch (op.type) {
    case OpType::kGet:
    case OpType::kGets:
      break;
    case OpType::kIncr:
    case OpType::kDecr:
      absl::StrAppend(&out, " by ", op.delta);
      break;
    case OpType::kDelete:
      break;
    case OpType::kCas:
      absl::StrAppend(&out, " ", QuoteValue(op.value), " flags ", op.flags,
                      " token ", op.cas);
      break;
    default:
      absl::StrAppend(&out, " ", QuoteValue(op.value), " flags ", op.flags);
      break;
  }
  absl::StrAppend(&out, " -> ", OutcomeName(op.outcome));
  if (op.outcome == Outcome::kHit) {
    absl::StrAppend(&out, " ", QuoteValue(op.value), " flags ", op.flags);
    if (op.type == OpType::kGets) absl::StrAppend(&out, " cas ", op.cas);
  } else if (op.outcome == Outcome::kNumber) {
    absl::StrAppend(&out, " ", op.number);
  }
  return out;
}

absl::Status WriteHistory(const History& history, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  std::vector<std::string> keys;
  for (const std::string& k : history.keys) keys.push_back(absl::CEscape(k));
  out << "keys " << absl::StrJoin(keys, " ") << "\n";
  for (const Op& op : history.ops) {
    out << op.client << " " << op.key << " " << static_cast<int>(op.type) << " "
        << op.invoke_ns << " " << op.respond_ns << " "
        << static_cast<int>(op.outcome) << " " << op.flags << " " << op.cas
        << " " << op.delta << " " << op.number << " " << absl::CEscape(op.value)
        << "\n";
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<History> ReadHistory(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  History history;
  std::string line;
  if (!std::getline(in, line) || line.rfind("keys", 0) != 0) {
    return absl::InvalidArgumentError("no keys line");
  }
  for (absl::string_view k : absl::StrSplit(absl::string_view(line).substr(4),
                                            ' ', absl::SkipEmpty())) {
    std::string key;
    if (!absl::CUnescape(k, &key)) return absl::InvalidArgumentError("bad key");
    history.keys.push_back(std::move(key));
  }
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 10));
    Op op;
    int type = 0, outcome = 0;
    if (f.size() != 11 || !absl::SimpleAtoi(f[0], &op.client) ||
        !absl::SimpleAtoi(f[1], &op.key) || !absl::SimpleAtoi(f[2], &type) ||
        !absl::SimpleAtoi(f[3], &op.invoke_ns) ||
        !absl::SimpleAtoi(f[4], &op.respond_ns) ||
        !absl::SimpleAtoi(f[5], &outcome) ||
        !absl::SimpleAtoi(f[6], &op.flags) ||
        !absl::SimpleAtoi(f[7], &op.cas) ||
        !absl::SimpleAtoi(f[8], &op.delta) ||
        !absl::SimpleAtoi(f[9], &op.number) ||
        !absl::CUnescape(f[10], &op.value) || type < 0 ||
        type > static_cast<int>(OpType::kDelete) || outcome < 0 ||
        outcome > static_cast<int>(Outcome::kUnknown)) {
      return absl::InvalidArgumentError(absl::StrCat("bad line: ", line));
    }
    op.type = static_cast<OpType>(type);
    op.outcome = static_cast<Outcome>(outcome);
    history.ops.push_back(std::move(op));
  }
  return history;
}

}  // namespace memshard::consistency
