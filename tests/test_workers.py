"""The suite's own scheduling: `make test` runs it on pytest-xdist workers with --dist loadgroup,
and the tests of one `xdist_group` (a loopback cluster, an S3 server, a shared sweep) must reach
one worker, so that its module's fixture is made once."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("probe")
def test_a_group_is_named_in_its_node_id_for_the_scheduler(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("checks `pytest -n N --dist loadgroup` (make test); this run is not one")
    assert request.node.nodeid.endswith("@probe"), request.node.nodeid
