#!/usr/bin/python3
"""pymemcache (Debian's python3-pymemcache) against a memcached-protocol server.

Usage: pymemcache_client.py PORT

Exercises pymemcache's whole text-protocol API on 127.0.0.1:PORT: Client
(every method), PooledClient, HashClient and the pickle serde. Run by
//server/integration:clients_integration_test against memshard and against
memcached (which proves the expectations). Prints one line per check and
exits non-zero at the first failure. The server is flushed first.
"""

import sys
import time

from pymemcache import serde
from pymemcache.client.base import Client, PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import (MemcacheClientError,
                                   MemcacheIllegalInputError,
                                   MemcacheUnknownCommandError)

checks = 0


def check(what, got, want):
    global checks
    checks += 1
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


def raises(what, exception, fn, *args, **kwargs):
    global checks
    checks += 1
    try:
        fn(*args, **kwargs)
    except exception as e:
        print(f"ok   {what} ({type(e).__name__})")
        return
    except Exception as e:  # noqa: BLE001 - report whatever else came
        print(f"FAIL {what}: raised {type(e).__name__}: {e}")
        sys.exit(1)
    print(f"FAIL {what}: did not raise {exception.__name__}")
    sys.exit(1)


def basic(port):
    c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5)
    check("flush_all", c.flush_all(noreply=False), True)

    # set/get, with and without noreply (pymemcache's default is noreply).
    check("set noreply", c.set("k", "v1"), True)
    check("get", c.get("k"), b"v1")
    check("set", c.set("k", b"v2", noreply=False), True)
    check("get overwritten", c.get("k"), b"v2")
    check("get missing", c.get("missing"), None)
    check("get default", c.get("missing", default=b"d"), b"d")
    check("set flags", c.set("f", b"x", flags=4294967295, noreply=False), True)
    check("set binary", c.set("bin", b"\r\nEND\r\n\x00\xff", noreply=False),
          True)
    check("get binary", c.get("bin"), b"\r\nEND\r\n\x00\xff")
    check("set empty", c.set("empty", b"", noreply=False), True)
    check("get empty", c.get("empty"), b"")
    big = bytes(range(256)) * 2000  # 512000 bytes
    check("set 500 KB", c.set("big", big, noreply=False), True)
    check("get 500 KB", c.get("big"), big)
    key250 = "k" * 250
    check("set 250-byte key", c.set(key250, b"long", noreply=False), True)
    check("get 250-byte key", c.get(key250), b"long")
    raises("251-byte key", MemcacheIllegalInputError, c.get, "k" * 251)

    # set_many/get_many (and their _multi aliases).
    values = {f"m{i}": f"value{i}".encode() for i in range(100)}
    check("set_many", c.set_many(values, noreply=False), [])
    check("get_many", c.get_many(list(values) + ["nope"]), values)
    check("set_multi", c.set_multi({"x1": b"1", "x2": b"2"}), [])
    check("get_multi", c.get_multi(["x1", "x2", "x3"]),
          {"x1": b"1", "x2": b"2"})
    check("get_many empty", c.get_many([]), {})

    # add/replace.
    check("add new", c.add("a", b"1", noreply=False), True)
    check("add existing", c.add("a", b"2", noreply=False), False)
    check("replace existing", c.replace("a", b"3", noreply=False), True)
    check("replace missing", c.replace("nope", b"3", noreply=False), False)
    check("get after replace", c.get("a"), b"3")
    check("add noreply", c.add("a2", b"n"), True)
    check("get added", c.get("a2"), b"n")

    # append/prepend.
    check("append", c.append("a", b"4", noreply=False), True)
    check("prepend", c.prepend("a", b"2", noreply=False), True)
    check("get appended", c.get("a"), b"234")
    check("append missing", c.append("nope", b"x", noreply=False), False)
    check("prepend missing", c.prepend("nope", b"x", noreply=False), False)
    check("append noreply", c.append("a", b"5"), True)
    check("get appended noreply", c.get("a"), b"2345")

    # gets/cas.
    value, cas = c.gets("a")
    check("gets value", value, b"2345")
    check("gets cas is a number", cas.isdigit(), True)
    check("cas stale", c.cas("a", b"new", int(cas) + 1), False)
    check("cas ok", c.cas("a", b"new", cas), True)
    check("cas reused", c.cas("a", b"newer", cas), False)
    check("cas missing", c.cas("nope", b"x", 1), None)
    check("gets missing", c.gets("nope"), (None, None))
    check("gets default", c.gets("nope", default=b"d", cas_default=b"0"),
          (b"d", b"0"))
    many = c.gets_many(["a", "k", "nope"])
    check("gets_many keys", sorted(many), ["a", "k"])
    check("gets_many values", (many["a"][0], many["k"][0]), (b"new", b"v2"))
    check("gets_many distinct cas", many["a"][1] != many["k"][1], True)

    # incr/decr.
    check("incr missing", c.incr("n", 1), None)
    check("decr missing", c.decr("n", 1), None)
    check("set counter", c.set("n", b"10", noreply=False), True)
    check("incr", c.incr("n", 5), 15)
    check("decr", c.decr("n", 6), 9)
    check("decr floors at 0", c.decr("n", 100), 0)
    check("incr to 2^64-1", c.incr("n", 2**64 - 1), 2**64 - 1)
    check("incr wraps", c.incr("n", 1), 0)
    check("incr noreply", c.incr("n", 7, noreply=True), None)
    check("get after incr noreply", c.get("n").strip(), b"7")
    check("set text", c.set("t", b"text", noreply=False), True)
    raises("incr non-numeric", MemcacheClientError, c.incr, "t", 1)

    # touch.
    check("touch", c.touch("a", 100, noreply=False), True)
    check("touch missing", c.touch("nope", 100, noreply=False), False)
    check("touch noreply", c.touch("a", 100), True)
    check("touch expires", c.touch("a", -1, noreply=False), True)
    check("get touched away", c.get("a"), None)

    # expiry.
    check("set expired", c.set("e", b"x", expire=-1, noreply=False), True)
    check("get expired", c.get("e"), None)
    # memcached's clock is a once-a-second timer that can fall behind and
    # catch up at once on a loaded machine: three ticks of slack before the
    # TTL, two and a half seconds after it.
    check("set expiring", c.set("s", b"x", expire=3, noreply=False), True)
    check("get before expiry", c.get("s"), b"x")
    time.sleep(5.5)
    check("get after expiry", c.get("s"), None)

    # delete/delete_many.
    check("delete", c.delete("k", noreply=False), True)
    check("delete missing", c.delete("k", noreply=False), False)
    check("delete noreply", c.delete("x1"), True)
    check("delete_many", c.delete_many(["m0", "m1", "nope"], noreply=False),
          True)
    check("delete_multi", c.delete_multi(["m2", "m3"]), True)
    check("get_many after deletes", c.get_many(["m0", "m1", "m2", "m3", "m4"]),
          {"m4": b"value4"})

    # stats, version, cache_memlimit, flush_all.
    stats = c.stats()  # {b"name": value}, numbers already converted
    for name in (b"pid", b"uptime", b"curr_connections", b"cmd_get",
                 b"get_hits", b"get_misses", b"curr_items", b"total_items",
                 b"bytes", b"limit_maxbytes", b"evictions"):
        check(f"stats has {name.decode()}", name in stats, True)
    check("stats get_hits is an int", isinstance(stats[b"get_hits"], int),
          True)
    check("stats curr_items", stats[b"curr_items"] > 100, True)
    check("stats limit_maxbytes", stats[b"limit_maxbytes"], 64 << 20)
    settings = c.stats("settings")
    check("stats settings maxbytes", settings.get(b"maxbytes"), 64 << 20)
    version = c.version()
    check("version is bytes", isinstance(version, bytes) and len(version) > 0,
          True)
    check("cache_memlimit", c.cache_memlimit(64), True)
    check("flush_all noreply", c.flush_all(), True)
    check("get after flush", c.get_many(["m4", "n", "big"]), {})
    check("flush_all delay 0", c.flush_all(delay=0, noreply=False), True)

    # shutdown is not for clients: an error, and the server stays up.
    raises("shutdown refused", (MemcacheUnknownCommandError,
                                MemcacheClientError), c.shutdown)
    check("alive after shutdown", c.set("alive", b"1", noreply=False), True)

    # quit closes; the client reconnects on next use.
    c.quit()
    check("get after quit", c.get("alive"), b"1")
    c.close()


def pooled_hash_serde(port):
    pool = PooledClient(("127.0.0.1", port), max_pool_size=4,
                        connect_timeout=5, timeout=5)
    check("pooled set", pool.set("p", b"1", noreply=False), True)
    check("pooled get", pool.get("p"), b"1")
    check("pooled incr", pool.incr("p", 2), 3)
    pool.close()

    hashed = HashClient([("127.0.0.1", port)], connect_timeout=5, timeout=5)
    check("hash set_many", hashed.set_many({"h1": b"1", "h2": b"2"},
                                           noreply=False), [])
    check("hash get_many", hashed.get_many(["h1", "h2", "h3"]),
          {"h1": b"1", "h2": b"2"})
    check("hash delete", hashed.delete("h1", noreply=False), True)

    pickled = Client(("127.0.0.1", port), serde=serde.pickle_serde,
                     connect_timeout=5, timeout=5)
    obj = {"list": [1, 2, 3], "text": "héllo", "n": 2**70}
    check("serde set object", pickled.set("obj", obj, noreply=False), True)
    check("serde get object", pickled.get("obj"), obj)
    check("serde set int", pickled.set("int", 42, noreply=False), True)
    check("serde get int", pickled.get("int"), 42)
    check("serde set str", pickled.set("str", "text", noreply=False), True)
    check("serde get str", pickled.get("str"), "text")
    pickled.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    port = int(sys.argv[1])
    basic(port)
    pooled_hash_serde(port)
    print(f"PASS: {checks} checks")


if __name__ == "__main__":
    main()
