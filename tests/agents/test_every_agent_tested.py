"""Every agent module has its in-memory test here, so a new branch without one fails.

An agent module ``agents/<name>.py`` is tested by ``tests/agents/test_<name>.py``, which runs
the module's agents in ``test_context()`` (through :func:`harness.run_agent` or directly),
itself or in shared cases it imports from this folder (``sink_cases.py``).
"""

import ast
import pkgutil
from pathlib import Path

import agents

HERE = Path(__file__).parent

PENDING: dict[str, str] = {}
"""Agent modules whose test is being written elsewhere; remove an entry once it exists."""


def agent_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(agents.__path__) if not m.name.startswith("_")}


def shared_cases(path: Path) -> list[Path]:
    """The modules of this folder a test module imports (``from .x import``), but the harness."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module != "harness":
            found.append(HERE / f"{node.module}.py")
    return found


def test_the_agent_modules_are_found():
    assert {"gateway", "ssfilter", "candidates", "objects"} <= agent_modules()


def test_every_agent_module_has_a_test_module_running_its_agents():
    untested = {}
    for name in sorted(agent_modules() - set(PENDING)):
        path = HERE / f"test_{name}.py"
        if not path.exists():
            untested[name] = f"no {path.name}"
            continue
        text = "".join(p.read_text() for p in [path, *shared_cases(path)])
        if "run_agent(" not in text and "test_context(" not in text:
            untested[name] = f"{path.name} runs no agent in test_context()"
    assert untested == {}, f"agent modules without an in-memory test: {untested}"


def test_the_pending_list_names_only_untested_modules():
    stale = {n for n in PENDING if n not in agent_modules() or (HERE / f"test_{n}.py").exists()}
    assert stale == set(), f"remove from PENDING (tested now, or gone): {sorted(stale)}"
