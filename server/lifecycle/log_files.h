#pragma once

// Where glog writes, and reopening its files on SIGHUP.
//
// Under systemd the journal collects stderr, so memshard logs to stderr
// unless --log_dir names a directory; then glog writes one file per severity
// there (memshard.INFO.<time>.<pid>, with a memshard.INFO symlink to the
// newest). glog never appends to an old file, so "reopen" means: start new
// files now, which is what log rotation needs.
//
// Thread-safety: UseLogDir() before other threads log; ReopenLogFiles()
// from any thread (glog locks per severity).

#include <string>

namespace memshard {

// True when systemd started this process (it sets $INVOCATION_ID, and
// $JOURNAL_STREAM when stderr is the journal).
bool UnderSystemd();

// Sends every severity to files in `dir` (glog's --log_dir layout, named
// "memshard.*").
void UseLogDir(const std::string& dir);

// No-op unless UseLogDir() was called.
void ReopenLogFiles();

}  // namespace memshard
