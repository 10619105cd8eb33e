"""User code named in a search space as "module:function": a model factory or a dataset loader.

A factory is `build(input_shape, num_classes, *, name: type = default, ...) -> nn.Module`; its
keyword-only parameters are the model's hyperparameters, with their types (int, float, bool,
str, or Literal[...] for options) and defaults. A loader is `load()`, or `load(root)`. The module
is looked for first in `search_dir` (the YAML file's own folder), then on sys.path.

No torch here: reading a factory's parameters must not load a deep-learning library when the
factory is the built-in CNN (BUILTIN_MODEL), whose parameters are ModelConfig's fields.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from models.config import ModelConfig

BUILTIN_MODEL = "models.cnn:build"
# ModelConfig fields the built-in factory derives from the data, not from the search space.
_FROM_DATA = ("in_channels", "image_size", "num_classes")
PARAM_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}
Scalar = bool | int | float | str


class CodeError(Exception):
    """The user's code could not be used: the message says why, in one line."""


@dataclass(frozen=True)
class Param:
    """One keyword-only parameter of a factory: a hyperparameter the search space may set."""

    name: str
    type: str  # a name in PARAM_TYPES: "int", "float", "bool" or "str"
    default: Scalar
    options: tuple[Scalar, ...] = ()  # a Literal's values; () = any value of `type`

    @property
    def python_type(self) -> builtins.type:
        return PARAM_TYPES[self.type]


@dataclass(frozen=True)
class Ref:
    """ "module:function", as written in the YAML."""

    module: str
    function: str

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


def parse_ref(text: object) -> Ref:
    """'digits_mlp:build' -> Ref; CodeError with the rule when it is not of that form."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise CodeError('expected "module:function", e.g. "my_model:build"')
    module, function = text.split(":")
    if not all(part.isidentifier() for part in module.split(".")) or not function.isidentifier():
        raise CodeError('expected "module:function" of Python names, e.g. "my_model:build"')
    return Ref(module, function)


def module_file(ref: Ref, search_dir: str | None) -> Path | None:
    """The file the module would be imported from, without importing it (None: not found)."""
    top = ref.module.split(".")[0]
    if search_dir is not None:
        spec = importlib.machinery.PathFinder.find_spec(top, [search_dir])
        if spec is not None and ref.module == top and spec.origin:
            return Path(spec.origin)
    try:
        spec = importlib.util.find_spec(ref.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None  # (an imported module's spec outlives its file)
    return Path(spec.origin)


def digest(path: Path) -> str:
    """SHA-256 of a module file, to tell later whether it changed."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_function(ref: Ref, search_dir: str | None) -> Callable[..., Any]:
    """Import the module (the YAML's folder first, then sys.path) and return the function.
    Any failure is a CodeError of one line: for an import, its error's last line (a syntax
    error with its file and line)."""
    module = _import(ref.module, search_dir)
    function = getattr(module, ref.function, None)
    if function is None:
        raise CodeError(f"module {ref.module!r} ({module.__file__}) has no {ref.function!r}")
    if not callable(function):
        raise CodeError(f"{ref} is a {type(function).__name__}, not a function")
    return typing.cast(Callable[..., Any], function)


def _import(name: str, search_dir: str | None) -> ModuleType:
    added = search_dir is not None and search_dir not in sys.path
    if added:
        sys.path.insert(0, str(search_dir))
    try:
        return importlib.import_module(name)
    except SyntaxError as e:
        raise CodeError(f"{e.filename}:{e.lineno}: SyntaxError: {e.msg}") from e
    except ModuleNotFoundError as e:
        if e.name is not None and name.startswith(e.name):
            where = f"{search_dir} or " if search_dir else ""
            raise CodeError(f"no module {name!r} in {where}the Python path") from e
        raise CodeError(f"importing {name!r}: {type(e).__name__}: {e}") from e
    except BaseException as e:  # the user's module ran and failed: its error's last line
        if isinstance(e, KeyboardInterrupt):
            raise
        raise CodeError(f"importing {name!r}: {type(e).__name__}: {e}") from e
    finally:
        if added:
            sys.path.remove(str(search_dir))


def model_params(ref: Ref, search_dir: str | None) -> tuple[Param, ...]:
    """The hyperparameters of a model factory: the built-in one's without importing torch."""
    if str(ref) == BUILTIN_MODEL:
        return builtin_params()
    return factory_params(load_function(ref, search_dir), str(ref))


def builtin_params() -> tuple[Param, ...]:
    """models.cnn:build's keyword-only parameters, from ModelConfig (tests hold the two equal)."""
    return tuple(
        Param(f.name, type(f.default).__name__, typing.cast(Scalar, f.default))
        for f in fields(ModelConfig)
        if f.name not in _FROM_DATA
    )


def factory_params(function: Callable[..., Any], where: str) -> tuple[Param, ...]:
    """Check `build(input_shape, num_classes, *, name: type = default, ...)` and return its
    keyword-only parameters; CodeError naming the first thing that does not fit."""
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
    except (TypeError, ValueError, NameError) as e:
        raise CodeError(f"{where}: cannot read its signature: {e}") from e
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) != 2:
        raise CodeError(
            f"{where} takes {len(positional)} positional parameters; a model factory takes "
            "2: build(input_shape, num_classes, *, hyperparameters...)"
        )
    return tuple(
        _param(p, hints.get(p.name), where)
        for p in signature.parameters.values()
        if p.kind == p.KEYWORD_ONLY
    )


def _param(p: inspect.Parameter, hint: Any, where: str) -> Param:
    allowed = "int, float, bool, str or Literal[...]"
    if p.default is p.empty:
        raise CodeError(
            f"{where}: parameter {p.name!r} has no default; every hyperparameter needs one"
        )
    if typing.get_origin(hint) is Literal:
        options = typing.get_args(hint)
        kinds = {type(o) for o in options}
        if len(kinds) != 1 or not kinds <= set(PARAM_TYPES.values()):
            raise CodeError(
                f"{where}: parameter {p.name!r}: Literal options of one type: {allowed}"
            )
        if p.default not in options:
            raise CodeError(
                f"{where}: parameter {p.name!r}: default {p.default!r} is not one of its options"
            )
        return Param(p.name, kinds.pop().__name__, p.default, tuple(options))
    if hint is None:
        raise CodeError(
            f"{where}: parameter {p.name!r} has no type annotation; a hyperparameter is {allowed}"
        )
    if hint not in PARAM_TYPES.values():
        shown = getattr(hint, "__name__", None) or repr(hint)
        raise CodeError(
            f"{where}: parameter {p.name!r} is annotated {shown}; a hyperparameter is {allowed}"
        )
    default = p.default
    if hint is float and isinstance(default, int) and not isinstance(default, bool):
        default = float(default)
    if type(default) is not hint:
        raise CodeError(
            f"{where}: parameter {p.name!r}: default {default!r} is not a {hint.__name__}"
        )
    return Param(p.name, hint.__name__, default)


def build_model(
    ref: Ref,
    search_dir: str | None,
    input_shape: tuple[int, ...],
    num_classes: int,
    params: dict[str, Any],
) -> Any:
    """The factory's model for these hyperparameters (a torch.nn.Module; CodeError if not)."""
    import torch

    if str(ref) == BUILTIN_MODEL:
        from models.cnn import build

        function: Callable[..., Any] = build
    else:
        function = load_function(ref, search_dir)
    model = function(tuple(input_shape), int(num_classes), **params)
    if not isinstance(model, torch.nn.Module):
        raise CodeError(f"{ref} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
