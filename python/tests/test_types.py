"""The package's type stubs (issue 29, item 6): ``mypy --strict`` accepts every python block of
python/README.md against the installed package's stubs (``py.typed``, ``*.pyi``), and each
stub lists exactly the parameters and public methods of what it describes, so a stub cannot
fall behind its module unnoticed.

The mypy test is skipped (visibly) where mypy is not installed; python/ci.sh installs it.
"""

import ast
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest

from test_readme import NEEDS_TORCH, python_blocks

PKG = pathlib.Path(__file__).resolve().parent.parent / "schedlab"
STUBS = ["pipeline", "dataloader", "streams", "_collate", "_core", "mix"]


def test_mypy_strict_accepts_the_readme_examples(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (python/ci.sh installs it)")
    files = []
    for p in python_blocks():
        code = p.values[0]
        if code.startswith(NEEDS_TORCH):
            continue
        name = "readme_" + p.id.split(":")[1] + ".py"
        (tmp_path / name).write_text(code, encoding="utf-8")
        files.append(name)
    assert len(files) >= 2
    # From a folder of its own: schedlab is the installed package (its stubs), not the source
    # tree, and nothing is cached between runs.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / ".cache"), *files],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"no issues found in {len(files)} source files" in out.stdout, out.stdout


def test_mypy_strict_rejects_a_wrong_argument(tmp_path):
    """The stubs constrain: a misspelled keyword and a wrong type are errors (so the test
    above cannot pass by everything being ``Any``)."""
    pytest.importorskip("mypy", reason="mypy is not installed (python/ci.sh installs it)")
    (tmp_path / "wrong.py").write_text(
        "import schedlab\n"
        "p = schedlab.Pipeline(10).map(lambda x: x, concurency=2)\n"
        "dl = schedlab.DataLoader([1, 2], batch_size='4')\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / ".cache"), "wrong.py"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 1, out.stdout
    assert 'Unexpected keyword argument "concurency"' in out.stdout, out.stdout
    assert 'Argument "batch_size" to "DataLoader"' in out.stdout, out.stdout


def _stub_defs(module):
    """``{qualified name: [(parameter, kind)]}`` of the functions and methods in the stub of
    ``module`` (kind: ``"pos"``, ``"kw"``, ``"*"`` or ``"**"``), and its classes."""
    tree = ast.parse((PKG / f"{module}.pyi").read_text(encoding="utf-8"))
    defs, classes = {}, {}

    def params(f):
        a = f.args
        out = [(x.arg, "pos") for x in a.posonlyargs + a.args]
        if a.vararg:
            out.append((a.vararg.arg, "*"))
        out += [(x.arg, "kw") for x in a.kwonlyargs]
        if a.kwarg:
            out.append((a.kwarg.arg, "**"))
        return out

    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defs[node.name] = params(node)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
            for m in node.body:
                if isinstance(m, ast.FunctionDef):
                    defs[f"{node.name}.{m.name}"] = params(m)
    return defs, classes


def _runtime_params(obj):
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "pos",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "pos",
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.KEYWORD_ONLY: "kw",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    return [(p.name, kinds[p.kind]) for p in inspect.signature(obj).parameters.values()]


@pytest.mark.parametrize("module", STUBS)
def test_each_stub_lists_the_runtime_parameters(module):
    mod = importlib.import_module(f"schedlab.{module}")
    defs, classes = _stub_defs(module)
    checked = 0
    for qual, stub_params in defs.items():
        obj = mod
        for part in qual.split("."):
            obj = inspect.getattr_static(obj, part, None)
            assert obj is not None, f"{module}.pyi: {qual} is not in schedlab.{module}"
        if isinstance(obj, property):
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        try:
            runtime = _runtime_params(obj)
        except (ValueError, TypeError):
            continue  # an extension function without a text signature
        if qual.endswith(".__init__") and runtime[1:] == [("args", "*"), ("kwargs", "**")]:
            # an extension class: its constructor's text signature is the class's
            runtime = [("self", "pos")] + _runtime_params(getattr(mod, qual.split(".")[0]))
        if "." in qual and runtime and runtime[0][0] in ("self", "cls", "$self"):
            runtime[0] = ("self", "pos")
        # a stub's __exit__ names its three arguments; the runtime may take *exc
        if qual.endswith(".__exit__") and runtime[1:] == [("exc", "*")]:
            continue
        assert stub_params == runtime, f"{module}.pyi: {qual}{stub_params} != {runtime}"
        checked += 1
    assert checked >= 1, f"{module}.pyi: nothing compared"
    # ... and every public method of a stubbed class is in its stub
    for name, node in classes.items():
        cls = getattr(mod, name)
        in_stub = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
        for attr, value in vars(cls).items():
            if attr.startswith("_") or not (callable(value) or isinstance(value, property)):
                continue
            assert attr in in_stub, f"{module}.pyi: {name}.{attr} is missing"
