"""The package's import graph: no cycles, function-level imports included.

Every ``import fairser_jax...`` / ``from fairser_jax... import ...`` of every
module, at module level or inside a function, is an edge; a cycle (found by
Tarjan's strongly connected components) fails the test, naming its
modules. A package importing its own submodules (``report/__init__``) is
not an edge back from them: Python imports the package first. Nor is
`importlib.import_module` in a module's PEP 562 ``__getattr__`` (the
deprecated aliases of ``fairser_jax.data.corpus``): it runs on attribute
access, after both modules are imported.
"""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "fairser_jax"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _graph(modules: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = (
            name if path.name == "__init__.py" else name.rpartition(".")[0]
        )
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package
                    for _ in range(node.level - 1):
                        up = up.rpartition(".")[0]
                    base = f"{up}.{base}" if base else up
                targets = [
                    f"{base}.{a.name}"
                    if f"{base}.{a.name}" in modules
                    else base
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "fairser_jax":
                    dep = owner(target)
                    if dep and dep != name:
                        deps.add(dep)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    """Its own check: a planted two-module and a three-module cycle."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c", "a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_are_edges(tmp_path, monkeypatch):
    pkg = tmp_path / "fairser_jax"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("from fairser_jax.data import b\n")
    (pkg / "data" / "b.py").write_text(
        "def f():\n    from fairser_jax.data import a  # hidden\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    assert _cycles(_graph(_modules())) == [
        ["fairser_jax.data.a", "fairser_jax.data.b"]
    ]


def test_no_import_cycles():
    graph = _graph(_modules())
    assert "fairser_jax.data.layouts" in graph  # the walk saw the package
    cycles = _cycles(graph)
    if cycles:
        pytest.fail(
            "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
        )


def test_moved_corpus_names_still_work_and_warn():
    """The names `fairser_jax.data.corpus` had before the layouts moved out
    resolve to their new homes for one release, with a warning."""
    from fairser_jax.data import corpus, iemocap, layouts, manifest

    moved = {
        "read": layouts.read,
        "detect_format": layouts.detect_format,
        "FORMATS": layouts.formats(),
        "from_iemocap": iemocap.to_corpus,
        "MANIFEST_FILE": manifest.UTTERANCES_FILE,
    }
    for name, new in moved.items():
        with pytest.warns(DeprecationWarning, match=f"corpus.{name} moved"):
            assert getattr(corpus, name) == new
    with pytest.raises(AttributeError):
        corpus.no_such_name  # noqa: B018


_ENTRY_POINT = """
import json, runpy, sys
sys.argv = ["main", "--config=configs/test.py", "--workdir=unused",
            *sys.argv[1:]]
code = None
try:
    runpy.run_module("fairser_jax.{module}", run_name="__main__")
except SystemExit as e:
    code = e.code
heavy = [m for m in ("jax", "flax", "optax", "ott", "orbax")
         if m in sys.modules]
print(json.dumps({{"code": code if code in (None, 0, 1, 2) else 1,
                   "heavy": heavy}}))
"""


@pytest.mark.parametrize("module", ["main", "train"])
@pytest.mark.parametrize(
    "flag",
    ["--config.seeds=(0,0)", "--config.train.epoch=3", "--config_help"],
)
def test_config_answers_come_before_jax_is_imported(module, flag):
    """A mistyped or invalid config field and `--config_help` are answered
    by `config` and `cli` alone: JAX and the trainer are imported for the
    work itself (a typo used to take as long as importing them)."""
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY_POINT.format(module=module), flag],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], out
    assert (out["code"] in (None, 0)) == (flag == "--config_help"), out
