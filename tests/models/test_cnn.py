from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from models.cnn import CNN, summary
from models.config import ModelConfig, max_conv_layers


@pytest.mark.parametrize(
    ("normalization", "conv_layers", "dropout"),
    list(itertools.product([False, True], [1, 2, 3, 4], [0.0, 0.2, 0.5, 0.8])),
)
def test_output_shape_for_every_combination(
    normalization: bool, conv_layers: int, dropout: float
) -> None:
    cfg = ModelConfig(
        conv_layers=conv_layers, filters=8, units=16, dropout=dropout, normalization=normalization
    )
    model = CNN(cfg)
    x = torch.randn(5, 1, 28, 28)
    model.train()
    assert model(x).shape == (5, 10)
    model.eval()
    assert model(x).shape == (5, 10)
    assert len(model.blocks) == conv_layers
    has_bn = any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in model.modules())
    assert has_bn == normalization
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [dropout]


def test_28x28_allows_four_blocks() -> None:
    assert max_conv_layers(28) == 4
    with pytest.raises(ValueError, match=r"allows 1\.\.4"):
        CNN(ModelConfig(conv_layers=5))
    with pytest.raises(ValueError, match="dropout"):
        CNN(ModelConfig(dropout=1.0))


def test_summary_names_the_blocks_and_parameters() -> None:
    text = summary(CNN(ModelConfig(conv_layers=3, normalization=True, dropout=0.5)))
    assert text.startswith("CNN 3x[conv3x3(32)+BN")
    assert "dropout(0.5)" in text and "parameters" in text
