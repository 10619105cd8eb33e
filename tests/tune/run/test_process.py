"""Starting and stopping the Ray of one machine, for real."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tune.run.process import RunOptions, start_ray, stop_ray

pytestmark = pytest.mark.integration


def test_stop_ray_ends_every_process_and_never_waits_for_the_monitor(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ray.shutdown()` stops Ray's processes one at a time, each sent SIGTERM and given up to a
    second, GCS before the autoscaler's monitor, whose SIGTERM handler then waits on GCS for the
    whole second. stop_ray kills the monitor first: when Ray's own sequence reaches it, it is
    gone. Every process ends. (Ray's sequence is watched, not changed.)"""
    import ray
    from ray._private import node as ray_node
    from ray._private import worker

    alive_when_reached: dict[str, bool] = {}
    kill = ray_node.Node._kill_process_impl

    def watched(self: Any, kind: str, *args: Any, **kwargs: Any) -> None:
        infos = self.all_processes.get(kind, [])
        alive_when_reached[kind] = any(i.process.poll() is None for i in infos)
        kill(self, kind, *args, **kwargs)

    monkeypatch.setattr(ray_node.Node, "_kill_process_impl", watched)
    start_ray(RunOptions())
    node = worker._global_node
    assert node is not None
    processes = [info.process for infos in node.all_processes.values() for info in infos]
    (monitor,) = [info.process for info in node.all_processes["monitor"]]

    stop_ray()

    assert not ray.is_initialized()
    assert alive_when_reached["monitor"] is False and alive_when_reached["gcs_server"] is True
    assert monitor.returncode == -signal.SIGKILL
    assert [p.poll() is not None for p in processes] == [True] * len(processes)
