"""The sections of the search-space YAML that name the user's code and data: `model:` (a model
factory, read from its signature) and `dataset:` (a built-in dataset, a loader, an .npz file or a
folder), each read into its spec.py dataclass. reader.py reads the rest of the file on top."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.dataset_files import DATASETS
from models.factory import (
    BUILTIN_MODEL,
    CodeError,
    Param,
    Ref,
    digest,
    model_params,
    module_file,
    parse_ref,
)
from tune.core.errors import Problem, show
from tune.space import hyperparams, user_code
from tune.space.fields import Fields
from tune.space.spec import Code, DatasetSpec, ModelSpec

DATASET_KEYS = (
    "name", "factory", "npz", "folder", "root", "validation_fraction", "train_steps", "eval_steps",
)  # fmt: skip
DATA_SOURCES = ("name", "factory", "npz", "folder")


class SourcesReader(Fields):
    """Reads `model:` and `dataset:`, a Problem for every bad key (Fields)."""

    def __init__(
        self, home_of: Callable[[str], str | None], known_params: tuple[Param, ...] | None
    ) -> None:
        super().__init__(home_of=home_of)
        # A record's: the model factory's parameters as they were, so that nothing is imported.
        self.known_params = known_params
        self.model_failed = False

    def model(self, raw: Any, here: str) -> ModelSpec:
        """`model: {factory: "module:function"}`: the factory's parameters, read from its
        signature (the module is imported: the YAML's folder first, then sys.path)."""
        m = self.mapping("model", raw, ("factory",))
        text = m.get("factory", BUILTIN_MODEL)
        if text == BUILTIN_MODEL:
            return ModelSpec()
        try:
            ref = parse_ref(text)
            if self.known_params is not None:
                return ModelSpec(str(ref), self.known_params)
            code = self.code(ref, here)
            with user_code.quiet():
                params = model_params(ref, code.search_dir)
        except CodeError as e:
            self.problems.append(Problem("model.factory", f"{show(text)}: {e}"))
            self.model_failed = True
            return ModelSpec()
        clash = [p.name for p in params if p.name in hyperparams.TRAIN_RULES]
        if clash:
            self.problems.append(
                Problem(
                    "model.factory",
                    f"{ref}'s parameter {clash[0]!r} is also the trainer's hyperparameter",
                    "rename it in the factory",
                )
            )
            self.model_failed = True
            return ModelSpec()
        return ModelSpec(str(ref), params, code)

    def code(self, ref: Ref, here: str) -> Code:
        """Where `ref`'s module is, and its digest, without importing it."""
        file = module_file(ref, here)
        if file is None:
            raise CodeError(f"no module {ref.module!r} in {here} or the Python path")
        root = file.parent if file.name == "__init__.py" else file
        for _ in range(ref.module.count(".") + 1):
            root = root.parent
        return Code(str(file.absolute()), digest(file), str(root.absolute()))

    def dataset(self, raw: Any, here: str) -> DatasetSpec:
        if isinstance(raw, str):  # `dataset: mnist` is a natural shorthand
            raw = {"name": raw}
        d = self.mapping("dataset", raw, DATASET_KEYS)
        default = DatasetSpec()
        sources = [k for k in DATA_SOURCES if d.get(k) is not None]
        if len(sources) > 1:
            self.problems.append(
                Problem(
                    f"dataset.{sources[1]}",
                    f"the data comes from one source, not {' and '.join(sources)}",
                    "one of name, factory, npz, folder",
                )
            )
        root = self.path("dataset.root", d.get("root"), None)
        return DatasetSpec(
            name=self.one_of("dataset.name", d.get("name", default.name), default.name, DATASETS),
            root=root,
            validation_fraction=self.number(
                "dataset.validation_fraction",
                d.get("validation_fraction", default.validation_fraction),
                default.validation_fraction,
                lambda x: 0 < x < 1,
                "a fraction in (0, 1)",
            ),
            train_steps=self.integer(
                "dataset.train_steps", d.get("train_steps"), None, 1, null=True
            ),
            eval_steps=self.integer("dataset.eval_steps", d.get("eval_steps"), None, 1, null=True),
            **self.data_source(d, here),
        )

    def data_source(self, d: dict[str, Any], here: str) -> dict[str, Any]:
        """The user's data, when the file names one: a loader (and its module's Code), an .npz
        file or a folder, paths taken from the YAML's folder."""
        out: dict[str, Any] = {}
        for key in ("npz", "folder"):
            path = self.path(f"dataset.{key}", d.get(key), here)
            if path is not None:
                out[key] = path
        text = d.get("factory")
        if text is None:
            return out
        try:
            ref = parse_ref(text)
            out["factory"] = str(ref)
            if self.known_params is None:
                out["code"] = self.code(ref, here)
        except CodeError as e:
            self.problems.append(Problem("dataset.factory", f"{show(text)}: {e}"))
        return out

    def path(self, key: str, raw: Any, here: str | None) -> str | None:
        """A path in the file: `here`-relative (the YAML's folder) when `here` is given."""
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw:
            self._bad(key, raw, "a path or null")
            return None
        path = Path(raw).expanduser()
        return str(path if here is None or path.is_absolute() else Path(here) / path)
