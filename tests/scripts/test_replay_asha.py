"""scripts/replay_asha.py: Ray's ASHA rule replayed on curves whose decisions are known."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "replay_asha.py"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_asha", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_first_trial_at_a_rung_goes_on_and_later_ones_must_beat_the_cutoff() -> None:
    replay = script()
    curves = {
        name: replay.Curve(val, (1.0, 1.0, 1.0))
        for name, val in {
            "a": (0.5, 0.6, 0.7),
            "b": (0.4, 0.5, 0.6),
            "c": (0.6, 0.7, 0.8),
        }.items()
    }
    # a first: nothing to compare with, so it runs all 3; b (0.4 < 0.5) stops after 1; c
    # (0.6 >= the 2/3 percentile of 0.4 and 0.5) goes on.
    assert replay.replay(["a", "b", "c"], curves, slots=1, max_t=3) == (7, 0.8)
    # The best first: both others fall below the cutoff at epoch 1.
    assert replay.replay(["c", "a", "b"], curves, slots=1, max_t=3) == (5, 0.8)
