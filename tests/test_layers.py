"""tune/ is grouped by layer, and no import goes up a layer: a module may import its own layer
and those below it, never one above (docs/architecture.md, "Layers"). An AST walk over every
module, function-local imports included; nothing is imported to check it.

models/ (the trainer and the model) sits below all of tune/ and imports neither tune, Ray nor
MLflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# The layer order, lowest first: the one place it is written down.
LAYERS = (
    "core",
    "space",
    "store",
    "analysis",
    "cluster",
    "run",
    "forecast",
    "report",
    "deploy",
    "cli",
)

FORBIDDEN_IN_MODELS = ("tune", "ray", "mlflow")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in a file; `from a import b` gives a.b as well as a,
    since b may be a module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> int | None:
    """The layer of a dotted module under tune (tune.store.records -> store), None for others
    and for tune itself."""
    parts = module.split(".")
    if parts[0] != "tune" or len(parts) < 2:
        return None
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module}: tune/{parts[1]} is in no layer; add it to LAYERS")
    return LAYERS.index(parts[1])


def tune_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "tune").rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("path", tune_modules(), ids=lambda p: module_name(p))
def test_no_import_goes_up_a_layer(path: Path) -> None:
    own = layer_of(module_name(path))
    assert own is not None
    upward = [
        f"line {line}: {name} ({LAYERS[layer]})"
        for line, name in imported(path)
        if (layer := layer_of(name)) is not None and layer > own
    ]
    assert not upward, f"{module_name(path)} ({LAYERS[own]}) imports from above: {upward}"


@pytest.mark.parametrize("path", sorted((ROOT / "models").rglob("*.py")), ids=lambda p: p.name)
def test_models_import_neither_tune_ray_nor_mlflow(path: Path) -> None:
    bad = [
        f"line {line}: {name}"
        for line, name in imported(path)
        if name.split(".")[0] in FORBIDDEN_IN_MODELS
    ]
    assert not bad, f"models/{path.name} imports {bad}"


def test_every_layer_is_a_package_or_a_module() -> None:
    for layer in LAYERS:
        assert (ROOT / "tune" / layer / "__init__.py").exists() or (
            ROOT / "tune" / f"{layer}.py"
        ).exists(), f"tune/{layer} is missing"


def test_the_walk_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a module of store/ that imports run/ inside a function is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tune.run import tracking\n")
    names = [name for _, name in imported(bad)]
    assert layer_of("tune.store.records") == LAYERS.index("store")
    assert any(layer_of(n) == LAYERS.index("run") for n in names)


def listing(doc: Path, heading: str) -> str:
    """The first code block under `heading` in a Markdown file."""
    text = doc.read_text()
    section = text[text.index(heading) :]
    start = section.index("```\n") + 4
    return section[start : section.index("```", start)]


def project_files(folders: tuple[str, ...]) -> list[str]:
    """Every package of tune/ (as "name/") and every module under `folders` (not __init__.py),
    as a newcomer looks for them."""
    names = [f"{p.name}/" for p in (ROOT / "tune").iterdir() if (p / "__init__.py").exists()]
    for folder in folders:
        names += [p.name for p in (ROOT / folder).rglob("*.py") if p.name != "__init__.py"]
    return sorted(set(names))


@pytest.mark.parametrize(
    ("doc", "heading", "folders"),
    [
        ("README.md", "## Layout", ("tune", "models", "scripts", "bench", "examples")),
        ("docs/architecture.md", "## Layers", ("tune", "models")),
    ],
)
def test_the_layout_listings_name_every_module_and_folder(
    doc: str, heading: str, folders: tuple[str, ...]
) -> None:
    block = listing(ROOT / doc, heading)
    missing = [n for n in project_files(folders) if n not in block]
    assert not missing, f"{doc} ({heading}) does not name {missing}"


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]),
    ids=lambda p: p.name,
)
def test_the_scripts_import_what_exists(path: Path) -> None:
    """bench/ and scripts/ are outside mypy's files: a name they import from tune or models
    that moved is caught here, not by a benchmark that fails hours in."""
    import importlib

    missing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "tune",
            "models",
        ):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"line {node.lineno}: {node.module}.{alias.name}")
    assert not missing, f"{path.name} imports what does not exist: {missing}"


# Sizes a reader can hold in mind: a module, a class, a function (docs/architecture.md, "Layers").
LIMITS = {"module": 500, "class": 200, "function": 60}


def oversized(path: Path) -> list[str]:
    """What in `path` is longer than LIMITS allows, as 'kind name: lines'."""
    source = path.read_text()
    found = []
    if (n := len(source.splitlines())) > LIMITS["module"]:
        found.append(f"module {path.name}: {n}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > LIMITS[kind]:
                found.append(f"{kind} {node.name}: {n}")
    return found


SIZED = sorted([*(ROOT / "tune").rglob("*.py"), *(ROOT / "models").rglob("*.py")])


@pytest.mark.parametrize("path", SIZED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_class_or_function_over_its_size(path: Path) -> None:
    assert oversized(path) == []


def test_the_size_check_sees_a_long_function(tmp_path: Path) -> None:
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * 60)
    assert oversized(long) == ["function f: 61"]
