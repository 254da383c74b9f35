#include "tools/loadgen/workload.h"

#include <cmath>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace memshard {
namespace loadgen {

absl::StatusOr<Ratio> ParseRatio(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  Ratio ratio;
  if (!absl::SimpleAtoi(parts.first, &ratio.gets) ||
      !absl::SimpleAtoi(parts.second, &ratio.sets) ||
      ratio.gets + ratio.sets == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad get:set ratio '", text, "' (want e.g. 9:1)"));
  }
  return ratio;
}

absl::StatusOr<SizeRange> ParseSizeRange(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('-', 1));
  SizeRange range;
  bool ok = absl::SimpleAtoi(parts.first, &range.min);
  if (parts.second.empty() && text.find('-') == absl::string_view::npos) {
    range.max = range.min;
  } else {
    ok = ok && absl::SimpleAtoi(parts.second, &range.max);
  }
  if (!ok || range.min > range.max) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad size '", text, "' (want N or MIN-MAX)"));
  }
  return range;
}

// The rejection-inversion method, following Apache Commons RNG's
// RejectionInversionZipfSampler; ranks there are 1-based.
namespace {

// log1p(x)/x, stable near 0.
double Helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x
                            : 1 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// expm1(x)/x, stable near 0.
double Helper2(double x) {
  return std::abs(x) > 1e-8
             ? std::expm1(x) / x
             : 1 + x * 0.5 * (1 + x * (1.0 / 3.0) * (1 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(n), exponent_(s) {
  if (n_ == 0) n_ = 1;
  h_integral_x1_ = HIntegral(1.5) - 1;
  h_integral_n_ = HIntegral(static_cast<double>(n_) + 0.5);
  s_ = 2 - HIntegralInverse(HIntegral(2.5) - H(2));
}

double ZipfSampler::H(double x) const {
  return std::exp(-exponent_ * std::log(x));
}

double ZipfSampler::HIntegral(double x) const {
  double log_x = std::log(x);
  return Helper2((1 - exponent_) * log_x) * log_x;
}

double ZipfSampler::HIntegralInverse(double x) const {
  double t = x * (1 - exponent_);
  if (t < -1) t = -1;  // rounding guard
  return std::exp(Helper1(t) * x);
}

uint64_t ZipfSampler::Sample(Rng& rng) const {
  while (true) {
    double u =
        h_integral_n_ + rng.NextDouble() * (h_integral_x1_ - h_integral_n_);
    double x = HIntegralInverse(u);
    double kd = std::floor(x + 0.5);
    uint64_t k;
    if (kd < 1) {
      k = 1;
    } else if (kd > static_cast<double>(n_)) {
      k = n_;
    } else {
      k = static_cast<uint64_t>(kd);
    }
    double kk = static_cast<double>(k);
    if (kk - x <= s_ || u >= HIntegral(kk + 0.5) - H(kk)) return k - 1;
  }
}

absl::StatusOr<KeyDistribution> ParseKeyDistribution(absl::string_view text) {
  if (text == "uniform") return KeyDistribution::kUniform;
  if (text == "zipf") return KeyDistribution::kZipf;
  return absl::InvalidArgumentError(
      absl::StrCat("bad key distribution '", text, "' (uniform or zipf)"));
}

KeyChooser::KeyChooser(uint64_t keys, KeyDistribution distribution,
                       double zipf_s)
    : keys_(keys == 0 ? 1 : keys),
      distribution_(distribution),
      zipf_(keys_, zipf_s > 0 ? zipf_s : 0.99) {}

uint64_t KeyChooser::Next(Rng& rng) const {
  return distribution_ == KeyDistribution::kZipf ? zipf_.Sample(rng)
                                                 : rng.Uniform(keys_);
}

absl::string_view FormatKey(uint64_t index, size_t key_size, char* buffer) {
  // Two digits per division and one memset for the padding: the generator
  // formats every key twice per request (sending, checking the reply).
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343"
      "53637383940414243444546474849505152535455565758596061626364656667686970"
      "7172737475767778798081828384858687888990919293949596979899";
  char* p = buffer + key_size;
  char* const first = buffer + 1;
  while (index >= 100 && p - first >= 2) {
    const char* pair = kPairs + 2 * (index % 100);
    index /= 100;
    p -= 2;
    p[0] = pair[0];
    p[1] = pair[1];
  }
  do {
    *--p = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0 && p > first);
  if (p > first) memset(first, '0', static_cast<size_t>(p - first));
  buffer[0] = 'k';
  return absl::string_view(buffer, key_size);
}

bool KeyIs(absl::string_view key, uint64_t index, size_t key_size) {
  if (key.size() != key_size || key_size == 0 || key_size > kMaxKeySize) {
    return false;
  }
  // Formatting and one memcmp beat a digit-by-digit comparison: most of a
  // key is padding, which FormatKey writes with one memset.
  char buffer[kMaxKeySize];
  return memcmp(FormatKey(index, key_size, buffer).data(), key.data(),
                key_size) == 0;
}

size_t MinKeySize(uint64_t keys) {
  uint64_t largest = keys == 0 ? 0 : keys - 1;
  size_t digits = 1;
  while (largest >= 10) {
    largest /= 10;
    ++digits;
  }
  return digits + 1;
}

}  // namespace loadgen
}  // namespace memshard
