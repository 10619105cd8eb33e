"""What a job ships of the user's code: the modules a sweep imports, as py_modules entries, and
for a submitted `hpo resume` the same modules found again on the submitting machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tune.cluster.nodes import modules_here, user_modules
from tune.core.errors import InputError
from tune.space.spec import Code, DatasetSpec, ModelSpec, SweepSpec

SOURCE = "def build(input_shape, num_classes):\n    pass\n\ndef load():\n    pass\n"


def spec_of(name: str, module: Path, search_dir: Path, recorded: str = SOURCE) -> SweepSpec:
    """A recorded sweep whose model and data both come from `module` (the digest of
    `recorded`, the file as the sweep saw it)."""
    code = Code(str(module), hashlib.sha256(recorded.encode()).hexdigest(), str(search_dir))
    return SweepSpec(
        name="t",
        source="/head/job/t.yaml",
        search={},
        model=ModelSpec(factory=f"{name}:build", code=code),
        dataset=DatasetSpec(factory=f"{name}:load", code=code),
    )


def test_a_one_file_module_ships_once_as_a_package_and_a_package_as_its_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "one_file_model.py").write_text(SOURCE)
    (entry,) = user_modules(spec_of("one_file_model", tmp_path / "one_file_model.py", tmp_path))
    assert Path(entry).name == "one_file_model"
    assert (Path(entry) / "__init__.py").read_text() == SOURCE

    package = tmp_path / "my_package"
    package.mkdir()
    (package / "model.py").write_text(SOURCE)
    spec = spec_of("my_package.model", package / "model.py", tmp_path)
    spec = SweepSpec(
        name="t",
        source="t.yaml",
        search={},
        model=ModelSpec(factory="my_package.model:build", code=spec.model.code),
    )
    assert user_modules(spec) == [str(package)]


def test_a_submitted_resume_ships_the_module_found_in_this_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record names the head node's copy; the module is found again here, in the folder
    `hpo resume` runs from."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "resumed_model.py").write_text(SOURCE)
    monkeypatch.chdir(here)
    spec = spec_of(
        "resumed_model", Path("/head/runtime/resumed_model/__init__.py"), Path("/head/runtime")
    )
    (entry,) = modules_here(spec, allow_changed=False)
    assert (Path(entry) / "__init__.py").read_text() == SOURCE


def test_a_submitted_resume_refuses_a_module_missing_or_changed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_of(
        "gone_model", Path("/head/runtime/gone_model/__init__.py"), Path("/head/runtime")
    )
    with pytest.raises(InputError) as missing:
        modules_here(spec, allow_changed=False)
    assert missing.value.lines() == [
        "/head/job/t.yaml: model.factory: the sweep's module 'gone_model' is neither "
        "in this folder nor on PYTHONPATH (run `hpo resume` from the folder that holds "
        "it, as `hpo submit` was)"
    ]

    (tmp_path / "edited_model.py").write_text(SOURCE + "# edited\n")
    spec = spec_of(
        "edited_model", Path("/head/runtime/edited_model/__init__.py"), Path("/head/runtime")
    )
    with pytest.raises(InputError, match=r"edited_model\.py changed since the sweep started"):
        modules_here(spec, allow_changed=False)
    (entry,) = modules_here(spec, allow_changed=True)
    assert (Path(entry) / "__init__.py").read_text().endswith("# edited\n")
