"""Model factories: their parameters read from the signature, and the built-in one's."""

from __future__ import annotations

import inspect
from typing import Literal

import pytest
import torch

from models import cnn
from models.config import ModelConfig
from models.factory import (
    BUILTIN_MODEL,
    CodeError,
    Param,
    build_model,
    builtin_params,
    factory_params,
    parse_ref,
)


def test_the_built_in_parameters_are_the_cnn_factorys_signature() -> None:
    """builtin_params() (read without torch, from ModelConfig) is models.cnn.build itself."""
    assert builtin_params() == factory_params(cnn.build, BUILTIN_MODEL)
    keyword = [
        p.name for p in inspect.signature(cnn.build).parameters.values() if p.kind == p.KEYWORD_ONLY
    ]
    assert [p.name for p in builtin_params()] == keyword


def test_the_built_in_factory_builds_todays_cnn() -> None:
    torch.manual_seed(0)
    model = build_model(parse_ref(BUILTIN_MODEL), None, (1, 28, 28), 10, {"conv_layers": 3})
    torch.manual_seed(0)
    today = cnn.CNN(ModelConfig(conv_layers=3))
    assert isinstance(model, cnn.CNN) and model.cfg == today.cfg
    for a, b in zip(model.state_dict().values(), today.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_types_defaults_and_options() -> None:
    def build(
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        width: int = 8,
        rate: float = 1,
        flag: bool = False,
        act: Literal["relu", "gelu"] = "gelu",
        size: Literal[3, 5] = 3,
    ) -> None:
        pass

    assert factory_params(build, "m:build") == (
        Param("width", "int", 8),
        Param("rate", "float", 1.0),
        Param("flag", "bool", False),
        Param("act", "str", "gelu", ("relu", "gelu")),
        Param("size", "int", 3, (3, 5)),
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def build(x, *, w: int = 1): ...",
            "m:build takes 1 positional parameters; a model factory takes 2",
        ),
        ("def build(x, n, *, w: int): ...", "parameter 'w' has no default"),
        ("def build(x, n, *, w: list = []): ...", "parameter 'w' is annotated list"),
        ("def build(x, n, *, w: int = 'a'): ...", "parameter 'w': default 'a' is not a int"),
        ("def build(x, n, *, w: Literal['a', 1] = 'a'): ...", "Literal options of one type"),
    ],
)
def test_signatures_that_do_not_fit(source: str, message: str) -> None:
    scope: dict[str, object] = {"Literal": Literal}
    exec(source, scope)
    with pytest.raises(CodeError, match=message.replace("[", r"\[")):
        factory_params(scope["build"], "m:build")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["build", "a:b:c", "a-b:build", "m:", 3])
def test_a_reference_is_module_colon_function(text: object) -> None:
    with pytest.raises(CodeError, match="module:function"):
        parse_ref(text)
