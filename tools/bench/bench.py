#!/usr/bin/python3
"""Side-by-side benchmark: memshard against Debian's memcached 1.6.

Both servers run with the same settings (one worker thread, pinned to CPU 0
with taskset, 1024 MB of memory, a 19000-connection limit, each on a free
port on 127.0.0.1); the load generator (//tools/loadgen:loadgen) is pinned to
CPU 1. Both are prefilled identically, then every scenario runs in
alternating windows, and each pair of windows gives one ratio
memshard/memcached. We report the median and the min-max of those ratios:
on a noisy two-core machine a ratio measured within one pair of adjacent
windows is far steadier than an absolute number.

Scenarios (from issue 3):
  S1  50 connections, depth 1, get:set 9:1, 32-byte keys, 100-byte values
  S2  50 connections, 16 gets per write (pipelined)
  S3  50 connections, 16-key multigets
  S4  8000 connections x 1 request/s, open loop: p50/p99/p99.9, CPU/op
  S5  18000 idle connections: server RSS growth per connection
  S6  1M items of 32-byte key + 100-byte value: RSS growth per item

Full mode: per scenario one discarded warm-up window per server, then
--pairs pairs in alternating order (A B, B A, A B, ...). S4's windows are
longer (--tail_window): its p99 and p99.9 come from the slowest 1% and
0.1% of 8,000 requests a second, and on a VM those are requests caught by
the few multi-millisecond stalls of a CPU in a window (a spinning probe
saw about one 4-8 ms gap per CPU per second here). In runs of memcached
against itself (--memshard=/usr/bin/memcached --scenarios=S4 --no_floor,
7 pairs), a window's p99 varied by 30-34% (coefficient of variation) over
5 s windows and 12-20% over 20 s, and the paired p99 ratios came out at
0.80 [0.63-1.23] and 1.13 [0.78-1.54]: differences of 10-15% in S4's p99
are below what one full run resolves here.

The floor (--floor; on by default in full runs of S1 and S4, off in
--quick): //tools/bench:floor_server, a do-nothing single-threaded epoll
server answering get/set from a fixed table, runs as a third server in the
same alternating windows (A B F, F B A, ...). It is no cache; it measures
what any server pays here per request (mostly the kernel's read, write and
wake-up), so the report adds floor/memcached (how far below memcached any
server could go on this box) and memshard/floor (what being a real cache
costs above that) next to memshard/memcached. S5 and S6 are
memory measurements taken once per server on fresh processes.
--quick: every scenario once, briefly, at reduced scale (CI smoke test).

Only the Python standard library is used. Exit status: 0 on success, 1 if
a server or the load generator failed.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WORKSPACE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Workload shared by every scenario.
KEY_SIZE = 32
VALUE_SIZE = 100


def log(message):
    print(message, file=sys.stderr, flush=True)


def die(message):
    log("bench: " + message)
    sys.exit(1)


# --------------------------------------------------------------- set-up


def ensure_memcached(path, allow_install):
    """Returns the memcached binary, installing Debian's package if needed."""
    if os.access(path, os.X_OK):
        return path
    if not allow_install:
        die("%s not found (and --no_install given)" % path)
    log("installing memcached with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq",
                           "--no-install-recommends", "memcached"],
                   check=True, env=env)
    if not os.access(path, os.X_OK):
        die("memcached still missing at %s after apt-get" % path)
    return path


# A release build, as operators run and as Debian builds memcached: the
# default (fastbuild) keeps every DCHECK, ~6% of memshard's instructions
# per request (callgrind, S1: 1,886 vs 1,785).
BUILD_FLAGS = ["-c", "opt"]


def build_binaries(output_base):
    """Builds loadgen, memshard and the floor server with Bazel; returns
    their paths."""
    bazel = ["bazel"]
    if output_base:
        bazel.append("--output_base=" + output_base)
    targets = ["//tools/loadgen:loadgen", "//server:memshard",
               "//tools/bench:floor_server"]
    log("building %s (%s)" % (" ".join(targets), " ".join(BUILD_FLAGS)))
    subprocess.run(bazel + ["build"] + BUILD_FLAGS + targets,
                   cwd=WORKSPACE, check=True)
    # Not the bazel-bin symlink: another output base may have moved it.
    bin_dir = subprocess.run(bazel + ["info"] + BUILD_FLAGS + ["bazel-bin"],
                             cwd=WORKSPACE, check=True, capture_output=True,
                             text=True).stdout.strip()
    return (os.path.join(bin_dir, "tools/loadgen/loadgen"),
            os.path.join(bin_dir, "server/memshard"),
            os.path.join(bin_dir, "tools/bench/floor_server"))


def pick_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def has_flag(binary, name):
    """True if a gflags binary defines --name (it rejects unknown flags)."""
    try:
        text = subprocess.run([binary, "--helpfull"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return ("-%s " % name) in text.stdout + text.stderr


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Server:
    """One server process (memcached or memshard) pinned with taskset."""

    def __init__(self, label, kind, binary, cpu, workdir, memory_mb,
                 max_connections, backend_port=None):
        self.label = label
        # How to start it: "memcached", "memshard", "floor" (the floor
        # server), or a proxy in front of the memcached at backend_port:
        # "memshard-proxy", "nutcracker".
        self.kind = kind
        self.backend_port = backend_port
        self.binary = binary
        self.cpu = cpu
        self.workdir = workdir
        self.memory_mb = memory_mb
        self.max_connections = max_connections
        self.process = None
        self.port = None
        self.log_path = os.path.join(workdir, label + ".log")

    def start(self):
        for _ in range(5):
            if self._try_start():
                return
        die("%s did not start; log:\n%s" % (self.label, self.log_tail()))

    def _try_start(self):
        port_file = os.path.join(self.workdir, self.label + ".port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        if self.kind == "memcached":
            self.port = pick_port()
            args = [self.binary, "-p", str(self.port), "-U", "0",
                    "-l", "127.0.0.1", "-t", "1", "-m", str(self.memory_mb),
                    "-c", str(self.max_connections)]
            if os.geteuid() == 0:
                args += ["-u", "root"]
        elif self.kind == "nutcracker":
            self.port = pick_port()
            conf = os.path.join(self.workdir, self.label + ".yml")
            with open(conf, "w") as f:
                # twemproxy's libmemcached-compatible placement, as memshard.
                f.write("bench:\n  listen: 127.0.0.1:%d\n  hash: md5\n"
                        "  distribution: ketama\n  timeout: 1000\n"
                        "  servers:\n   - 127.0.0.1:%d:1\n" %
                        (self.port, self.backend_port))
            args = [self.binary, "-c", conf, "-s", str(pick_port()),
                    "-a", "127.0.0.1", "-p",
                    os.path.join(self.workdir, self.label + ".pid"),
                    "-o", self.log_path + ".nutcracker"]
        elif self.kind == "floor":
            self.port = None
            args = [self.binary, "--listen=127.0.0.1", "--port=0",
                    "--port_file=" + port_file]
        else:
            self.port = None
            args = [self.binary, "--listen=127.0.0.1", "--port=0",
                    "--port_file=" + port_file, "--workers=1",
                    "--memory_limit_mb=%d" % self.memory_mb,
                    "--max_connections=%d" % self.max_connections]
            if has_flag(self.binary, "admin_port"):
                # Off: the default admin port may be taken by another
                # memshard, and the endpoint is not under test here.
                args.append("--admin_port=0")
            if self.kind == "memshard-proxy":
                # Text to the backend, as nutcracker speaks.
                args += ["--mode=proxy",
                         "--backends=127.0.0.1:%d" % self.backend_port,
                         "--backend_protocol=text"]
        command = ["taskset", "-c", str(self.cpu)] + args
        log_file = open(self.log_path, "a")
        log_file.write("$ %s\n" % " ".join(command))
        log_file.flush()
        # taskset execs the server, so the pid we hold is the server's.
        self.process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        log_file.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                return False
            if self.port is None and os.path.exists(port_file):
                text = open(port_file).read().strip()
                if text.isdigit():
                    self.port = int(text)
            if self.port is not None and self._accepts():
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        except OSError:
            return False

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def rss_kb(self):
        return rss_kb(self.process.pid)

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Loadgen:
    def __init__(self, binary, cpu, workdir):
        self.binary = binary
        self.cpu = cpu
        self.log_path = os.path.join(workdir, "loadgen.log")

    def run(self, server, args, timeout=600):
        """Runs one loadgen window against `server`; returns its JSON."""
        command = ["taskset", "-c", str(self.cpu), self.binary, "--json",
                   "--port=%d" % server.port,
                   "--server_pid=%d" % server.process.pid] + args
        with open(self.log_path, "a") as log_file:
            log_file.write("$ %s\n" % " ".join(command))
            log_file.flush()
            done = subprocess.run(command, stdout=subprocess.PIPE,
                                  stderr=log_file, text=True, timeout=timeout,
                                  preexec_fn=raise_fd_limit)
        lines = done.stdout.strip().splitlines()
        if done.returncode not in (0, 3) or not lines:
            die("loadgen failed (status %d) against %s: %s\nsee %s" %
                (done.returncode, server.label, " ".join(command),
                 self.log_path))
        result = json.loads(lines[-1])
        result["exit_status"] = done.returncode
        if not server.alive():
            die("%s died; log:\n%s" % (server.label, server.log_tail()))
        return result


# ------------------------------------------------------------ scenarios


def window_args(scale, scenario):
    """loadgen flags for one window of S1-S4."""
    window = scale["tail_window"] if scenario == "S4" else scale["window"]
    common = ["--keys=%d" % scale["keys"], "--key_size=%d" % KEY_SIZE,
              "--value_size=%d" % VALUE_SIZE, "--expect_all_hits",
              "--duration=%g" % window,
              "--warmup=%g" % scale["warmup"]]
    if scenario == "S1":
        return common + ["--connections=50", "--pipeline=1", "--ratio=9:1"]
    if scenario == "S2":
        return common + ["--connections=50", "--pipeline=16", "--ratio=1:0"]
    if scenario == "S3":
        return common + ["--connections=50", "--multiget=16", "--ratio=1:0"]
    if scenario == "S4":
        n = scale["open_connections"]
        return common + ["--connections=%d" % n, "--rate=%d" % n,
                         "--ratio=9:1"]
    raise ValueError(scenario)


DESCRIPTIONS = {
    "S1": "50 conns, depth 1, get:set 9:1",
    "S2": "50 conns, 16 gets per write",
    "S3": "50 conns, 16-key multigets",
    "S4": "{open_connections} conns x 1 req/s, open loop",
    "S5": "{idle} idle connections",
    "S6": "{keys} items, 32 B key + 100 B value",
    "P1": "proxy, 50 conns, depth 1, get:set 9:1",
}


def proxy_scenario(loadgen, memcached, memshard_binary, options, scale,
                   pairs, discard_first, workdir, problems):
    """P1: memshard --mode=proxy vs nutcracker, each pinned to the server
    CPU, in front of one memcached (on the loadgen CPU: two cores only).
    Returns (rows, raw)."""
    nutcracker = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    if not os.access(nutcracker, os.X_OK):
        if options.no_install:
            die("nutcracker not found")
        log("bench: installing nutcracker")
        subprocess.run(["apt-get", "install", "-y", "-qq", "nutcracker"],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    backend = Server("backend", "memcached", memcached, options.loadgen_cpu,
                     workdir, 1024, 19000)
    servers = [backend]
    try:
        backend.start()
        prefill(loadgen, backend, scale, problems)
        peer = Server("nutcracker", "nutcracker", nutcracker,
                      options.server_cpu, workdir, 1024, 19000,
                      backend_port=backend.port)
        candidate = Server("memshard-proxy", "memshard-proxy",
                           memshard_binary, options.server_cpu, workdir, 1024,
                           19000, backend_port=backend.port)
        servers += [peer, candidate]
        peer.start()
        candidate.start()
        log("bench: P1")
        measured = run_alternating(loadgen, peer, candidate, scale, "S1",
                                   pairs, discard_first, problems)
    finally:
        for server in servers:
            server.stop()
    rows = []
    for i, (metric, title, digits) in enumerate(
            [("ops_per_sec", "ops/s", 0),
             ("cpu_us_per_op", "proxy CPU us/op", 2)]):
        rows.append(("P1 " + DESCRIPTIONS["P1"] if i == 0 else "", title,
                     fmt(median_of(measured, 0, metric), digits),
                     fmt(median_of(measured, 1, metric), digits),
                     fmt_ratio(ratio_summary(measured, metric))))
    return rows, measured


def check_clean(result, where, problems):
    if result.get("errors", 0) or result.get("hit_check") == "fail":
        problems.append("%s: errors=%s hit_check=%s" % (
            where, result.get("errors"), result.get("hit_check")))


def prefill(loadgen, server, scale, problems):
    """S6: fresh server, set every key once; RSS growth per item."""
    result = loadgen.run(server, [
        "--keys=%d" % scale["keys"], "--key_size=%d" % KEY_SIZE,
        "--value_size=%d" % VALUE_SIZE, "--connections=50", "--prefill",
        "--duration=0"])
    check_clean(result, "S6 prefill %s" % server.label, problems)
    growth_kb = (result["server_rss_kb_after_prefill"] -
                 result["server_rss_kb_start"])
    return {"bytes_per_item": growth_kb * 1024.0 / scale["keys"],
            "prefill_s": result["prefill_s"], "raw": result}


def idle_connections(loadgen, server, scale, problems):
    """S5: hold silent connections; RSS growth per connection."""
    result = loadgen.run(server, [
        "--connections=0", "--hold_idle=%d" % scale["idle"],
        "--duration=%g" % scale["idle_hold"], "--warmup=1"])
    if result["idle_connections"] != scale["idle"] or result["idle_closed"]:
        problems.append("S5 %s: %d of %d idle connections open, %d closed" % (
            server.label, result["idle_connections"], scale["idle"],
            result["idle_closed"]))
    growth_kb = result["server_rss_kb_end"] - result["server_rss_kb_start"]
    return {"bytes_per_connection": growth_kb * 1024.0 / scale["idle"],
            "raw": result}


def window_metrics(result):
    latency = result["latency_us"]
    return {"ops_per_sec": result["ops_per_sec"],
            "cpu_us_per_op": result["server_cpu_us_per_op"],
            "p50_us": latency["p50"], "p99_us": latency["p99"],
            "p999_us": latency["p999"]}


def run_alternating(loadgen, peer, candidate, scale, scenario, pairs,
                    discard_first, problems, extra=()):
    """Runs windows A B, B A, ... (with `extra` servers: A B F, F B A, ...);
    returns per-pair metrics, one tuple (peer, candidate, *extra) a pair."""
    args = window_args(scale, scenario)
    servers = [peer, candidate] + list(extra)

    def one(server, tag):
        result = loadgen.run(server, args)
        check_clean(result, "%s %s %s" % (scenario, server.label, tag),
                    problems)
        return window_metrics(result)

    if discard_first:
        for server in servers:
            one(server, "warm-up")
    measured = []
    for i in range(pairs):
        order = range(len(servers)) if i % 2 == 0 else reversed(
            range(len(servers)))
        got = [None] * len(servers)
        for k in order:
            got[k] = one(servers[k], "pair %d" % i)
        measured.append(tuple(got))
        log("  %s pair %d: %s" % (scenario, i, " | ".join(
            "%s %.0f ops/s %.2f us/op" % (
                server.label, m["ops_per_sec"], m["cpu_us_per_op"] or -1)
            for server, m in zip(servers, got))))
    return measured


def ratio_summary(pairs, metric, num=1, den=0):
    """Median, min and max of server `num` / server `den` over the pairs
    (default candidate/peer)."""
    ratios = [p[num][metric] / p[den][metric] for p in pairs
              if p[den][metric] and p[num][metric] is not None]
    if not ratios:
        return None
    return (statistics.median(ratios), min(ratios), max(ratios))


def median_of(pairs, side, metric):
    values = [p[side][metric] for p in pairs if p[side][metric] is not None]
    return statistics.median(values) if values else None


# --------------------------------------------------------------- report


def fmt(value, digits=2):
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return "{:,.0f}".format(value)
    return "%.*f" % (digits, value)


def fmt_ratio(summary):
    if summary is None:
        return "n/a"
    median, low, high = summary
    return "%.2f [%.2f-%.2f]" % (median, low, high)


def report(rows, peer_label, candidate_label, header, floor_label=None):
    widths = (40, 16, 11, 11, 22)
    titles = ("scenario", "metric", peer_label, candidate_label,
              "ratio median [min-max]")
    if floor_label:
        # Rows without floor figures are padded.
        widths += (11, 22, 22)
        titles += (floor_label, "%s/%s" % (floor_label, peer_label),
                   "%s/%s" % (candidate_label, floor_label))
        rows = [tuple(row) + ("",) * (len(widths) - len(row))
                for row in rows]
    lines = [header, ""]
    lines.append("| " + " | ".join(t.ljust(w) for t, w in zip(titles, widths))
                 + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(
            str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="every scenario once, briefly (CI smoke test)")
    parser.add_argument("--pairs", type=int, default=5,
                        help="alternating window pairs per scenario (full)")
    parser.add_argument("--window", type=float, default=5.0,
                        help="measured seconds per window (full)")
    parser.add_argument("--tail_window", type=float, default=20.0,
                        help="measured seconds per S4 window (full): its "
                        "percentiles need the longer sample")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="unmeasured seconds before each window (full)")
    parser.add_argument("--scenarios", default="S1,S2,S3,S4,S5,S6,P1")
    parser.add_argument("--loadgen", help="loadgen binary (default: build "
                        "with -c opt)")
    parser.add_argument("--memshard", help="memshard binary (default: build "
                        "with -c opt); "
                        "a binary named 'memcached' here is started as "
                        "memcached, to check the bench against itself")
    parser.add_argument("--memcached", default="/usr/bin/memcached")
    parser.add_argument("--floor", action="store_true", default=None,
                        help="run the floor server as a third server in S1 "
                        "and S4 (default: on in full runs, off in --quick)")
    parser.add_argument("--no_floor", action="store_false", dest="floor",
                        help="no floor server")
    parser.add_argument("--floor_server", help="floor server binary "
                        "(default: build //tools/bench:floor_server)")
    parser.add_argument("--no_install", action="store_true",
                        help="fail instead of apt-get installing memcached")
    parser.add_argument("--bazel_output_base",
                        help="bazel --output_base when building")
    parser.add_argument("--server_cpu", type=int, default=0)
    parser.add_argument("--loadgen_cpu", type=int, default=1)
    parser.add_argument("--json_out", help="write every measurement here")
    options = parser.parse_args()

    scenarios = [s.strip() for s in options.scenarios.split(",") if s.strip()]
    if options.quick:
        scale = {"keys": 100000, "window": 1.0, "tail_window": 1.0,
                 "warmup": 0.3,
                 "open_connections": 8000, "idle": 18000, "idle_hold": 0.5}
        pairs, discard_first = 1, False
    else:
        scale = {"keys": 1000000, "window": options.window,
                 "tail_window": options.tail_window,
                 "warmup": options.warmup, "open_connections": 8000,
                 "idle": 18000, "idle_hold": 1.0}
        pairs, discard_first = max(1, options.pairs), True

    if shutil.which("taskset") is None:
        die("taskset not found (util-linux)")
    if os.cpu_count() is None or os.cpu_count() < 2:
        log("warning: fewer than 2 CPUs; server and loadgen share one")
        options.loadgen_cpu = options.server_cpu
    if raise_fd_limit() < scale["idle"] + 1000:
        die("RLIMIT_NOFILE hard limit too low for %d connections" %
            scale["idle"])
    memcached = ensure_memcached(options.memcached, not options.no_install)
    use_floor = (not options.quick if options.floor is None
                 else options.floor) and bool(
                     {"S1", "S4"} & set(scenarios))
    loadgen_binary, memshard_binary = options.loadgen, options.memshard
    floor_binary = options.floor_server
    if (not loadgen_binary or not memshard_binary or
            (use_floor and not floor_binary)):
        built = build_binaries(options.bazel_output_base)
        loadgen_binary = loadgen_binary or built[0]
        memshard_binary = memshard_binary or built[1]
        floor_binary = floor_binary or built[2]
    for path in (loadgen_binary, memshard_binary) + (
            (floor_binary,) if use_floor else ()):
        if not os.access(path, os.X_OK):
            die("not executable: %s" % path)

    candidate_kind = ("memcached" if os.path.basename(memshard_binary) ==
                      "memcached" else "memshard")
    candidate_label = ("memshard" if candidate_kind == "memshard"
                       else "memcached-b")
    workdir = tempfile.mkdtemp(prefix="memshard_bench_")
    log("bench: logs in %s" % workdir)
    settings = dict(cpu=options.server_cpu, workdir=workdir, memory_mb=1024,
                    max_connections=19000)
    peer = Server("memcached", "memcached", memcached, **settings)
    candidate = Server(candidate_label, candidate_kind, memshard_binary,
                       **settings)
    floor = (Server("floor", "floor", floor_binary, **settings)
             if use_floor else None)
    servers = [peer, candidate] + ([floor] if floor else [])
    loadgen = Loadgen(loadgen_binary, options.loadgen_cpu, workdir)
    problems = []
    rows = []
    raw = {"scale": scale, "pairs": pairs, "scenarios": {}}
    started = time.time()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for server in servers:
            server.start()
            log("bench: %s on port %d, pid %d" % (
                server.label, server.port, server.process.pid))

        # S6 doubles as the identical prefill S1-S4 need.
        filled = {}
        for server in servers:
            filled[server.label] = prefill(loadgen, server, scale, problems)
        if "S6" in scenarios:
            a, b = filled[peer.label], filled[candidate.label]
            rows.append(("S6 " + DESCRIPTIONS["S6"].format(**scale),
                         "RSS B/item", fmt(a["bytes_per_item"], 1),
                         fmt(b["bytes_per_item"], 1),
                         fmt(b["bytes_per_item"] / a["bytes_per_item"])
                         if a["bytes_per_item"] > 0 else "n/a"))
            raw["scenarios"]["S6"] = filled

        if "S5" in scenarios:
            held = {}
            for server in (peer, candidate):
                held[server.label] = idle_connections(loadgen, server, scale,
                                                      problems)
            a, b = held[peer.label], held[candidate.label]
            rows.append(("S5 " + DESCRIPTIONS["S5"].format(**scale),
                         "RSS B/conn", fmt(a["bytes_per_connection"], 1),
                         fmt(b["bytes_per_connection"], 1),
                         fmt(b["bytes_per_connection"] /
                             a["bytes_per_connection"])
                         if a["bytes_per_connection"] > 0 else "n/a"))
            raw["scenarios"]["S5"] = held

        for scenario in ("S1", "S2", "S3", "S4"):
            if scenario not in scenarios:
                continue
            log("bench: %s" % scenario)
            extra = [floor] if floor and scenario in ("S1", "S4") else []
            measured = run_alternating(loadgen, peer, candidate, scale,
                                       scenario, pairs, discard_first,
                                       problems, extra)
            raw["scenarios"][scenario] = measured
            name = "%s %s" % (scenario,
                              DESCRIPTIONS[scenario].format(**scale))
            metrics = [("ops_per_sec", "ops/s", 0),
                       ("cpu_us_per_op", "server CPU us/op", 2)]
            if scenario == "S4":
                metrics += [("p50_us", "p50 us", 1), ("p99_us", "p99 us", 1),
                            ("p999_us", "p99.9 us", 1)]
            for i, (metric, title, digits) in enumerate(metrics):
                row = (name if i == 0 else "", title,
                       fmt(median_of(measured, 0, metric), digits),
                       fmt(median_of(measured, 1, metric), digits),
                       fmt_ratio(ratio_summary(measured, metric)))
                if extra:
                    # The floor, from the same windows.
                    row += (fmt(median_of(measured, 2, metric), digits),
                            fmt_ratio(ratio_summary(measured, metric, 2, 0)),
                            fmt_ratio(ratio_summary(measured, metric, 1, 2)))
                rows.append(row)
    except KeyboardInterrupt:
        problems.append("interrupted")
    finally:
        for server in servers:
            server.stop()

    proxy_rows = []
    if "P1" in scenarios and candidate_kind == "memshard" and not problems:
        try:
            proxy_rows, raw["scenarios"]["P1"] = proxy_scenario(
                loadgen, memcached, memshard_binary, options, scale, pairs,
                discard_first, workdir, problems)
        except KeyboardInterrupt:
            problems.append("interrupted")

    mode = ("quick (1 window per server, reduced scale)" if options.quick
            else "full (%d alternating pairs after a discarded warm-up "
            "window, %gs windows, S4 %gs)" % (pairs, scale["window"],
                                              scale["tail_window"]))
    header = ("memshard bench, %s; %s vs memcached %s; server CPU %d, "
              "loadgen CPU %d; %.0f s" % (
                  mode, candidate_label, memcached_version(memcached),
                  options.server_cpu, options.loadgen_cpu,
                  time.time() - started))
    print(report(rows, peer.label, candidate_label, header,
                 floor.label if floor else None))
    print("values are medians over windows; ratios are %s/memcached per "
          "pair" % candidate_label)
    if floor:
        print("floor: //tools/bench:floor_server, a do-nothing epoll server "
              "(no cache), in the same alternating windows as the others")
    if proxy_rows:
        print()
        print(report(proxy_rows, "nutcracker", "memshard",
                     "proxies in front of one memcached (on the loadgen CPU)"))
        print("ratios are memshard --mode=proxy / nutcracker per pair")
    if options.json_out:
        with open(options.json_out, "w") as f:
            json.dump(raw, f, indent=1)
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def memcached_version(binary):
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True,
                             timeout=5).stdout.split()
        return out[-1] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
