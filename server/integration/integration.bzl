"""Macros for the integration tests: each runs the real //server:memshard."""

_COMMON_DATA = ["//server:memshard"]

_COMMON_DEPS = [
    "//testing:blocking_client",
    "//testing:server_process",
    "@system//:absl",
    "@system//:gtest_main",
]

def integration_test(name, size = "medium", data = [], deps = [], **kwargs):
    """A cc_test of <name>.cc with memshard in its runfiles.

    Args:
      name: the test; its source is <name>.cc.
      size: the Bazel test size.
      data: runfiles beyond //server:memshard.
      deps: libraries beyond the blocking client, the process fixture, absl
        and gtest_main.
      **kwargs: passed to cc_test (tags, ...).
    """
    native.cc_test(
        name = name,
        size = size,
        srcs = [name + ".cc"],
        data = _COMMON_DATA + data,
        deps = _COMMON_DEPS + [d for d in deps if d not in _COMMON_DEPS],
        **kwargs
    )

def hostile_test(name, deps = [], **kwargs):
    """An integration_test that uses :hostile_util (a well-behaved client
    beside the hostile one, p99 and RSS checks)."""
    integration_test(name = name, deps = [":hostile_util"] + deps, **kwargs)
