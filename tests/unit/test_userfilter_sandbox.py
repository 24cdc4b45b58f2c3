"""The sandbox's command line and exit descriptions (pure; the real sandboxes are in
tests/userfilter)."""

import signal
from pathlib import Path

import pytest

from brokerapp.model.settings import load_settings
from brokerapp.runtime.userfilter.process import describe_exit
from brokerapp.runtime.userfilter.sandbox import (
    SandboxLimits,
    SandboxPlan,
    allocate_uid,
    bwrap_argv,
    python_plan,
)
from brokerapp.runtime.userfilter.supervisor import SupervisorConfig


def binds(argv):
    out = []
    for index, arg in enumerate(argv):
        if arg in ("--bind", "--ro-bind", "--ro-bind-try", "--bind-try", "--dev-bind"):
            out.append((arg, argv[index + 1], argv[index + 2]))
    return out


def test_bwrap_argv_isolates_and_binds_only_what_the_filter_needs():
    plan = python_plan(Path("/somewhere/code"), "mod:f")
    argv = bwrap_argv(plan, Path("/tmp/staged"))
    before_command = argv[: argv.index("--")]
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in before_command
    assert "--share-net" not in argv
    sources = {source for _, source, _ in binds(argv)}
    assert "/" not in sources and "/work" not in sources and "/home" not in sources
    assert ("--ro-bind", "/tmp/staged/code", "/code") in binds(argv)
    assert ("--ro-bind", "/tmp/staged/sdk", "/sdk") in binds(argv)
    assert all(kind != "--bind" for kind, _, _ in binds(argv))  # nothing writable
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp"
    assert argv[argv.index("--") + 1 :] == [
        "/usr/bin/python3",
        "-m",
        "brokerapp.userfilter",
        "mod:f",
    ]
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert env["PYTHONPATH"] == "/sdk:/code" and not [k for k in env if k.startswith("BROKER")]


def test_extra_env_is_passed_but_nothing_else():
    plan = SandboxPlan(command=("/usr/bin/env",), code_dir=Path("/c"), env={"MY_PARAM": "1"})
    argv = bwrap_argv(plan, Path("/s"))
    env = {argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"}
    assert env == {"PATH", "HOME", "LANG", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "MY_PARAM"}


def test_describe_exit():
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(128 + signal.SIGXCPU) == "CPU-time limit reached (SIGXCPU)"
    assert describe_exit(-signal.SIGKILL) == "killed (SIGKILL)"
    assert describe_exit(128 + signal.SIGTERM) == "killed by SIGTERM"
    assert describe_exit(None) == "still running"


def test_limits_and_config_come_from_settings():
    settings = load_settings(userfilter_memory_mb=300, userfilter_answer_timeout=2.5)
    assert SandboxLimits.from_settings(settings).memory_mb == 300
    assert SupervisorConfig.from_settings(settings).answer_timeout == 2.5


def test_sandbox_uids_are_never_system_accounts():
    with pytest.raises(ValueError):
        allocate_uid(0)
    first, second = allocate_uid(70000), allocate_uid(70000)
    assert first >= 70000 and second > first
