"""The user-filter SDK and the line protocol, without a sandbox: frames in, frames out."""

import ast
import io
import struct
import sys
from pathlib import Path

import pytest

from brokerapp import userfilter
from brokerapp.userfilter import protocol

SDK = Path(userfilter.__file__).parent


def frames(*messages):
    return b"".join(protocol.encode_frame(m) for m in messages)


def read_all(data):
    stream, out = io.BytesIO(data), []
    while (message := protocol.read_frame(stream)) is not None:
        out.append(message)
    return out


def serve(alert_filter, *messages):
    out = io.BytesIO()
    status = userfilter.run(alert_filter, stdin=io.BytesIO(frames(*messages)), stdout=out)
    return status, read_all(out.getvalue())


START = {"type": "start", "protocol": 1, "filter": "t", "params": {"limit": 2}, "streams": []}


def test_the_sdk_imports_the_standard_library_only():
    for path in SDK.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("brokerapp.userfilter"), (
                    f"{path.name} imports {name}"
                )


def test_frame_is_big_endian_length_then_utf8_json():
    data = protocol.encode_frame({"type": "x", "s": "é"})
    body = '{"type":"x","s":"é"}'.encode()
    assert data == struct.pack(">I", len(body)) + body


def test_decorated_function_answers_each_alert_in_order():
    @userfilter.filter()
    def f(alert):
        if alert["n"] == 0:
            return None
        if alert["n"] == 1:
            return userfilter.Pass({"k": 1})
        if alert["n"] == 2:
            return [userfilter.Emit("s", {"v": 2}), userfilter.Emit("s", {"v": 3})]
        if alert["n"] == 3:
            return True
        raise RuntimeError("boom")

    alerts = [{"type": "alert", "id": i + 10, "alert": {"n": i}} for i in range(5)]
    status, out = serve(f, START, *alerts)
    assert status == 0
    assert out[0] == {"type": "hello", "protocol": 1, "input": "json"}
    assert out[1] == {"type": "result", "id": 10, "action": "drop"}
    assert out[2] == {"type": "result", "id": 11, "action": "pass", "annotations": {"k": 1}}
    assert out[3]["action"] == "emit" and [r["value"]["v"] for r in out[3]["records"]] == [2, 3]
    assert out[4] == {"type": "result", "id": 13, "action": "pass"}
    assert out[5] == {"type": "error", "id": 14, "reason": "RuntimeError: boom"}
    assert f({"n": 3}) is True  # still callable as the function


def test_class_filter_gets_params_and_avro_with_schema_once():
    seen = []

    class F(userfilter.AlertFilter):
        input = "avro"

        def setup(self, params):
            self.limit = params["limit"]

        def filter(self, alert):
            seen.append((alert.body, alert.schema, alert.schema_id))
            return userfilter.Drop("too faint") if alert.body == b"\x02" else True

    a1 = {"type": "alert", "id": 1, "schema_id": 7, "schema": {"type": "int"}, "avro": "AQ=="}
    a2 = {"type": "alert", "id": 2, "schema_id": 7, "avro": "Ag=="}
    status, out = serve(F, START, a1, a2, {"type": "stop"}, a1)
    assert out[0]["input"] == "avro"
    assert out[2] == {"type": "result", "id": 2, "action": "drop", "reason": "too faint"}
    assert seen == [(b"\x01", {"type": "int"}, 7), (b"\x02", {"type": "int"}, 7)]
    assert len(out) == 3  # nothing after stop


def test_answers_that_are_not_json_become_errors():
    @userfilter.filter()
    def f(alert):
        return userfilter.Pass({"x": object()}) if alert else "yes"

    _, out = serve(
        f, START, {"type": "alert", "id": 1, "alert": 1}, {"type": "alert", "id": 2, "alert": 0}
    )
    assert out[1]["type"] == "error" and "not JSON" in out[1]["reason"]
    assert out[2]["type"] == "error" and "TypeError" in out[2]["reason"]


def test_load_entry_point_accepts_instance_class_and_function(tmp_path, monkeypatch):
    (tmp_path / "mod_uf_a.py").write_text(
        "from brokerapp import userfilter\n"
        "class C(userfilter.AlertFilter):\n    def filter(self, a): return True\n"
        "def plain(a): return False\n"
        "inst = userfilter.filter()(plain)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("mod_uf_a:C", "mod_uf_a:plain", "mod_uf_a:inst"):
        assert isinstance(userfilter.load_entry_point(spec), userfilter.AlertFilter)
    with pytest.raises(ValueError):
        userfilter.load_entry_point("no_colon")


@pytest.mark.parametrize(
    "message, reason",
    [
        ({"type": "result", "id": 2, "action": "pass"}, "expected 1"),
        ({"type": "result", "id": 1, "action": "keep"}, "unknown action"),
        (
            {"type": "result", "id": 1, "action": "emit", "records": [{"stream": "x", "value": 1}]},
            "not granted",
        ),
        ({"type": "result", "id": 1, "action": "pass", "annotations": [1]}, "JSON object"),
        ({"type": "hello", "id": 1}, "expected a 'result'"),
    ],
)
def test_check_answer_refuses(message, reason):
    with pytest.raises(protocol.FrameError, match=reason):
        protocol.check_answer(message, 1, frozenset({"s"}))


def test_check_hello_refuses_other_versions():
    assert protocol.check_hello({"type": "hello", "protocol": 1, "input": "avro"}) == "avro"
    with pytest.raises(protocol.FrameError, match="protocol"):
        protocol.check_hello({"type": "hello", "protocol": 2})


def test_read_frame_refuses_oversized_and_truncated_frames():
    with pytest.raises(protocol.FrameError, match="exceeds"):
        protocol.read_frame(io.BytesIO(b"\xff\xff\xff\xffxx"))
    with pytest.raises(protocol.FrameError, match="ended inside"):
        protocol.read_frame(io.BytesIO(struct.pack(">I", 10) + b"{}"))
    with pytest.raises(protocol.FrameError, match="not UTF-8 JSON"):
        protocol.read_frame(io.BytesIO(struct.pack(">I", 3) + b"abc"))
