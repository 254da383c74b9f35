#pragma once

// The consistency checker: is a recorded history (history.h) of single-key
// memcached operations linearizable, key by key?
//
// Thread-compatible: CheckHistory reads its input and shares nothing.
//
// What is checked. Each key is checked on its own (linearizability is
// compositional, so a history is linearizable iff every key's sub-history
// is). For a key, the checker searches for a total order of its operations
// that (a) respects real time: if A responded before B was invoked, A comes
// first, and (b) replays on the sequential model of one memcached item to
// exactly the replies that were recorded. It is an exact search, not a
// heuristic: Wing & Gong's depth-first search with Lowe's memo of failed
// configurations, driven by events in time order ("just in time": an
// operation is linearized when its response forces it, trying first the
// fewest other in-flight operations before it). A configuration is the model
// state plus which in-flight operations are already linearized. Two
// reductions keep it cheap and stay exact: an in-flight operation that the
// current state explains without changing it (a matching read, a failed
// write) is linearized at once; and once an operation that overlapped
// nothing fixes the whole state (a store, a delete, a miss, a gets hit),
// earlier choices cannot matter and are forgotten. Sound: a reported
// violation means no order exists; ties in time count as overlap. The cost
// grows steeply with the number of operations in flight on one key at
// once; a search that exceeds its budget is reported as inconclusive, never
// as a violation. (Measured: 1.2M ops from 8 connections on 16 keys, or 16
// connections on 8 keys, check in 7-10 s; 16 connections all on one key
// need about 30M configurations, beyond the default budget.)
//
// The model (memcached's text protocol, exptime 0, no flush, no eviction):
//   get/gets: hit (value, flags) iff present; gets also returns the token.
//   set: STORED. add: STORED iff absent, else NOT_STORED. replace, append,
//   prepend: STORED iff present, else NOT_STORED; append/prepend keep flags.
//   cas: NOT_FOUND if absent; STORED iff the token is the current version's;
//   EXISTS otherwise.
//   incr/decr: NOT_FOUND if absent; non-numeric unless the value parses like
//   memcached's safe_strtoull; else the new value (incr wraps at 2^64, decr
//   floors at 0), stored as decimal padded with spaces to the old length
//   when shorter (memcached's in-place rewrite; memshard's too). Flags stay.
//   delete: DELETED iff present (then absent), else NOT_FOUND.
//   Every successful mutation makes a new version with a new token.
//   An operation with an unknown outcome (no reply) may take effect, at any
//   time after its invocation, or never.
// Tokens: the model does not guess the server's tokens; a version's token is
// learnt from the first gets linearized on it, and every later gets of that
// version must return the same token. A cas's token was returned by one of the
// same client's earlier gets, so that gets is linearized first: the cas can
// win only if no mutation was linearized in between. This assumes the server
// never gives two versions of a key the same token (memcached's is a global
// counter; memshard's a per-stripe counter with the stripe in the low bits).
//
// Implied rules, also stated in the reports: every read returns a value some
// write produced (or a concatenation / increment of one), never one that was
// invoked after the read responded, never one already overwritten by a write
// that completed before the read began; nothing acknowledged as stored goes
// missing unless a linearizable delete explains it; incr/decr results fit one
// order of the deltas. Two explicit checks run besides the search, with their
// own messages: a CAS token wins at most once (two cas with one token both
// STORED), and one token never names two different values of a key.
//
// After a violation (the operation where the search got furthest before
// every path died) the checker excuses that operation, treating its reply as
// unknown, and searches the key again, so independent violations are all
// reported.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/consistency/history.h"

namespace memshard::consistency {

struct CheckOptions {
  // A key whose search explores more configurations than this while
  // backtracking is given up as inconclusive (not a violation).
  size_t max_configurations = 1 << 20;
  // Violations described in full; the rest are only counted.
  size_t max_reported = 20;
};

struct Violation {
  uint32_t key = 0;
  // Several lines: the rule broken, the operation, the candidate states just
  // before it, the operations in flight and the key's recent past.
  std::string description;
};

struct CheckReport {
  uint64_t ops = 0;
  uint64_t keys = 0;
  uint64_t violations = 0;
  std::vector<Violation> reported;  // the first max_reported
  // Keys given up (search budget, more than 64 operations in flight on one
  // key, too many violations), with the reason.
  std::vector<std::string> inconclusive;
  // Effort: the deepest stack of open branch points, and how often the
  // search backtracked, over all keys.
  size_t peak_branch_points = 0;
  uint64_t backtracks = 0;

  bool ok() const { return violations == 0 && inconclusive.empty(); }
  // "N ops on K keys: V violations (...)" and the reports.
  std::string Summary() const;
};

CheckReport CheckHistory(const History& history,
                         const CheckOptions& options = CheckOptions());

// memcached's safe_strtoull on an item's data: leading whitespace, an
// optional sign, decimal digits that fit in 64 bits, then whitespace or the
// end; a '-' is allowed only if the result is not negative as int64 ("-0").
bool ParseNumericValue(const std::string& value, uint64_t* out);

}  // namespace memshard::consistency
