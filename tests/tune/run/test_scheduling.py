from __future__ import annotations

import pickle

from tests.conftest import SEARCH_SPACES
from tune.run.scheduling import SchedulerState, scheduler
from tune.space.spec import load_spec


def test_asha_rungs_survive_a_save_and_restore() -> None:
    """Ray saves callback states with each experiment snapshot (pickled) and hands them back
    on restore; ASHA's rungs travel that way into the restored, empty scheduler."""
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    before = scheduler(spec)
    before._brackets[0]._rungs[-1][1]["t_00000"] = 0.81  # a trial recorded at the first rung
    saved = pickle.dumps(SchedulerState(before).get_state())

    after = scheduler(spec)
    assert after._brackets[0]._rungs[-1][1] == {}
    SchedulerState(after).set_state(pickle.loads(saved))
    assert after._brackets[0]._rungs[-1][1] == {"t_00000": 0.81}


def test_no_scheduler_has_no_state() -> None:
    assert SchedulerState(None).get_state() is None
    assert (
        pickle.loads(
            pickle.dumps(SchedulerState(scheduler(load_spec(SEARCH_SPACES / "smoke.yaml"))))
        ).scheduler
        is None
    )
