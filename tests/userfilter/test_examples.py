"""The example filters, Python (SDK) and Java (line protocol, JDK only), in real sandboxes."""

import shutil
import subprocess

import pytest

from brokerapp.runtime.userfilter.sandbox import SandboxLimits, SandboxPlan, python_plan
from brokerapp.runtime.userfilter.supervisor import FilterSupervisor, SupervisorConfig
from tests.userfilter.conftest import BRIGHT_18, EXAMPLES

CONFIG = SupervisorConfig(answer_timeout=10, start_timeout=30, max_restarts=0)


def passed_ids(items, verdicts):
    return {
        i.record["objectId"] for i, v in zip(items, verdicts, strict=True) if v["action"] == "pass"
    }


@pytest.mark.parametrize("entry", ["bright:Bright", "bright:bright18"])
async def test_python_example_passes_the_bright_alerts(ztf_items, entry):
    sup = FilterSupervisor("example-py", python_plan(EXAMPLES / "python", entry), CONFIG)
    await sup.start()
    try:
        verdicts = await sup.process(ztf_items)
    finally:
        await sup.stop()
    assert passed_ids(ztf_items, verdicts) == BRIGHT_18
    status = sup.status()
    assert (status["alerts_in"], status["passed"], status["dropped"]) == (18, 6, 12)
    assert status["errors"] == 0 and status["state"] == "stopped"
    if entry == "bright:Bright":
        bright = [v for v in verdicts if v["action"] == "pass"]
        assert all(v["annotations"]["magpsf"] < 18 for v in bright)


async def test_python_example_params_and_emitted_records(ztf_items):
    sup = FilterSupervisor(
        "example-py-summary",
        python_plan(EXAMPLES / "python", "bright:Bright"),
        CONFIG,
        streams=frozenset({"summary"}),
        params={"mag_limit": 16.0, "summary": True},
    )
    await sup.start()
    try:
        verdicts = await sup.process(ztf_items)
    finally:
        await sup.stop()
    records = [r for v in verdicts if v["action"] == "emit" for r in v["records"]]
    assert sorted(value["objectId"] for _, value in records) == ["ZTF17aaacxxf", "ZTF17aabuxmy"]
    assert {stream for stream, _ in records} == {"summary"}


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory):
    if shutil.which("javac") is None:
        pytest.skip("javac is not installed")
    out = tmp_path_factory.mktemp("java-filter")
    subprocess.run(
        ["javac", "-d", str(out), str(EXAMPLES / "java" / "BrightFilter.java")], check=True
    )
    return out


async def test_java_example_over_the_line_protocol(ztf_items, java_classes):
    java = shutil.which("java")
    command = (
        "/usr/bin/java", "-Xmx64m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-XX:CompressedClassSpaceSize=64m", "-XX:ReservedCodeCacheSize=32m",
        "-Xshare:off", "-cp", "/code", "BrightFilter",
    )  # fmt: skip
    assert java is not None
    limits = SandboxLimits(memory_mb=2048, processes=128, open_files=256)
    plan = SandboxPlan(command=command, code_dir=java_classes, limits=limits)
    sup = FilterSupervisor("example-java", plan, CONFIG, params={"mag_limit": 18.0})
    await sup.start()
    try:
        verdicts = await sup.process(ztf_items)
    finally:
        await sup.stop()
    assert passed_ids(ztf_items, verdicts) == BRIGHT_18
    assert all(v["annotations"]["by"] == "java" for v in verdicts if v["action"] == "pass")
    assert sup.status()["errors"] == 0, sup.status()


async def test_avro_mode_gets_the_bare_body_and_the_schema(ztf_items):
    from tests.userfilter.conftest import HOSTILE

    sup = FilterSupervisor("avro", python_plan(HOSTILE, "avroinfo:info"), CONFIG)
    assert await sup.start() == "avro"
    try:
        verdicts = await sup.process(ztf_items)
    finally:
        await sup.stop()
    for item, verdict in zip(ztf_items, verdicts, strict=True):
        report = verdict["annotations"]
        assert report["schema"] == "alert" and report["schema_id"] == 1
        assert report["bytes"] == len(item.body) and report["head"] == list(item.body[:8])
        assert report["offset"] == item.offset
