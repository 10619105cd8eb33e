"""The handlers of the commands that check, run and look at a sweep: `hpo validate`, `sweep`,
`resume`, `extend`, `list` and `status`. Each is thin: the work is in the layers below
(docs/architecture.md, "Layers"); the other handlers are in on_cluster.py and results.py."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

from tune.cli.common import (
    address_of,
    check_code,
    check_recorded_uri,
    data_dir,
    experiment_of,
    finish,
    no_plan,
    not_a_job_address,
    print_input_error,
    run_options,
    storage_of,
    sweep_spec,
    tracking_of,
    warn,
)
from tune.cli.on_cluster import submit_resume
from tune.cli.results import after_confirm
from tune.core.errors import EXIT_BAD_INPUT, EXIT_OK, InputError, UsageError
from tune.core.text import duration
from tune.store.tracking_uri import absolute_tracking_uri, check_tracking_uri

if TYPE_CHECKING:
    from tune.run.process import RunOptions
    from tune.run.warm_start import WarmStart
    from tune.space.spec import SweepSpec


def cmd_validate(args: argparse.Namespace) -> int:
    from tune.space.spec import load_spec

    status = EXIT_OK
    # For a cluster, the trials and (with `hpo submit`) the driver run there: nothing of this
    # machine is checked, and a CPU laptop can validate a GPU sweep.
    here = not args.for_cluster and address_of(args) is None
    for file in args.files:
        try:
            spec = load_spec(file, local=here, driver=here, data_dir=data_dir())
        except InputError as e:
            print_input_error(e, args.verbose)
            status = EXIT_BAD_INPUT
            continue
        print(f"{file}: valid: sweep '{spec.name}': {spec.describe()}")
        warn(spec, file)
    return status


def cmd_sweep(args: argparse.Namespace) -> int:
    from tune.store import records
    from tune.store import storage as storage_module

    address = address_of(args)
    not_a_job_address(address, "sweep")
    spec = sweep_spec(args, local=address is None, driver=True)
    from tune.run import sweep
    from tune.run.aside import set_aside

    if args.smoke:
        spec = sweep.smoke_variant(spec)
    storage = storage_of(args)
    if (problem := storage_module.check_writable(storage)) is not None:
        raise UsageError(problem)
    tracking_uri = tracking_of(args)
    if (problem := check_tracking_uri(tracking_uri)) is not None:
        raise UsageError(problem)
    tracking_uri = absolute_tracking_uri(tracking_uri)
    warm = warm_start_of(args.warm_start, storage, spec)
    exp_dir = records.experiment_dir(storage, spec.name)
    with records.lock(exp_dir):
        if exp_dir.exists() and not args.overwrite:
            raise UsageError(
                f"experiment '{spec.name}' already exists in {exp_dir.parent}: continue it with "
                f"`hpo resume {spec.name}`, or start it again with --overwrite (or use --name NEW)"
            )
        options = run_options(args)
        # Before --overwrite moves the old experiment aside: a plan that refuses the input
        # (exit 2) leaves everything as it was.
        planned, plan_line = plan_at_start(spec, options, no_plan(args))
        aside = set_aside(exp_dir, spec, options)
        print(
            f"hpo: sweep '{spec.name}': {spec.describe()}; results in "
            f"{storage_module.ray_path(exp_dir)}, MLflow at {tracking_uri}",
            flush=True,
        )
        for line in (plan_line, warm.line() if warm else ""):
            if line:
                print(f"hpo: {line}", flush=True)
        result = sweep.run_sweep(
            spec, exp_dir, tracking_uri, options, replacing=aside, warm=warm, planned=planned
        )
    return finish(result, spec.metric.name, tracking_uri)


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    address = address_of(args)
    not_a_job_address(address, "plan")
    spec = sweep_spec(args, local=address is None, driver=True)
    options = run_options(args)
    from tune.forecast.plan import make_plan

    print(f"hpo: plan for '{spec.name}': {spec.describe()}; measuring ...", flush=True)
    plan = make_plan(spec, options)
    print("\n".join(plan.lines()))
    if args.json:
        print(json.dumps(plan.as_json()))
    return EXIT_OK


def plan_at_start(spec: SweepSpec, options: RunOptions, skip: bool) -> tuple[dict[str, float], str]:
    """`hpo plan`'s figures for the sweep about to start, for its record, and its line to
    print; nothing when `skip` (--no-plan, $HPO_NO_PLAN). A plan that fails costs the sweep
    nothing but a line; bad input is refused as the sweep would refuse it (exit 2)."""
    if skip:
        return {}, ""
    from tune.forecast.plan import make_plan

    try:
        plan = make_plan(spec, options)
    except InputError:
        raise
    except Exception as e:  # the forecast is a help, never a reason not to run
        return {}, f"no plan ({type(e).__name__}: {e}); the sweep goes on"
    te, wall = plan.trial_epochs, plan.wall_s
    line = (
        f"plan: {te.p10:.0f}-{te.p90:.0f} trial-epochs (median {te.median:.0f}), "
        f"{duration(wall.p10)} to {duration(wall.p90)} (median {duration(wall.median)}), "
        f"{plan.slots} at a time, {plan.peak_mem_mb:.0f} MB a trial (`hpo plan` for more)"
    )
    return plan.figures(), line


def warm_start_of(name: str | None, storage: str, spec: SweepSpec) -> WarmStart | None:
    """The earlier experiment `--warm-start` names, read for the new sweep; None without it."""
    if name is None:
        return None
    from tune.run import warm_start
    from tune.store import records

    found = records.locate(name, storage)
    if found is None:
        raise UsageError(f"--warm-start {name}: no experiment of that name or folder in {storage}")
    return warm_start.read(found, spec)


def cmd_resume(args: argparse.Namespace) -> int:
    from tune.cluster.jobs import is_job_address
    from tune.run import confirm, experiment, summary, sweep
    from tune.store import records
    from tune.store.rows import experiment_rows, experiment_table

    address = address_of(args)
    if address is not None and is_job_address(address):
        return submit_resume(args, address)
    exp_dir = experiment_of(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        check_recorded_uri(record)
        options = run_options(args)
        if experiment.is_finished(exp_dir):
            caught_up = experiment.catch_up(record, exp_dir, finished=True)
            _, rows = experiment_rows(exp_dir)
            print(f"hpo: '{record.name}' already finished; nothing to resume.")
            print(experiment_table(record, rows))
            for line in summary.caught_up_lines(caught_up, record.tracking_uri):
                print(line)
            return EXIT_OK
        check_code(record, args, "hpo resume")
        print(f"hpo: resuming '{record.name}' in {exp_dir}, MLflow at {record.tracking_uri}")
        if record.is_confirm:
            # Resumed by the user's word: from now on `hpo confirm` may continue it too.
            record = confirm.sealed(record, exp_dir)
            plan = confirm.plan(record, options)
        else:
            plan = sweep.plan(record.spec, options)
        result = experiment.run_experiment(record, exp_dir, plan, options, args.restart_errored)
    if record.is_confirm:
        return after_confirm(exp_dir.parent, result, record)
    return finish(result, record.metric, record.tracking_uri)


def cmd_extend(args: argparse.Namespace) -> int:
    """`hpo extend`: more samples for a sweep, in its folder, with its record, lock and MLflow
    parent run; its searcher and ASHA go on from their state (tune/run/extend.py)."""
    from tune.run import experiment, extend, sweep
    from tune.store import records
    from tune.store.rows import experiment_rows

    not_a_job_address(address_of(args), "extend")
    exp_dir = experiment_of(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        if (problem := extend.refusal(record, args.num_samples)) is not None:
            raise UsageError(f"{exp_dir}: {problem}")
        if not experiment.has_saved_state(exp_dir):
            raise UsageError(
                f"{exp_dir}: Ray saved no trials of it yet; `hpo resume {record.name}` starts them"
            )
        check_recorded_uri(record)
        check_code(record, args, "hpo extend")
        options = run_options(args)
        _, rows = experiment_rows(exp_dir)
        before = record.expected_trials(len(rows))
        record = extend.extended(record, args.num_samples, len(rows))
        print(
            f"hpo: extending '{record.name}' in {exp_dir} from {before} to {record.trial_count} "
            f"trials ({record.spec.search_algorithm} search), MLflow at {record.tracking_uri}",
            flush=True,
        )
        plan = replace(sweep.plan(record.spec, options), fresh_budget=True)
        result = experiment.run_experiment(record, exp_dir, plan, options)
    return finish(result, record.metric, record.tracking_uri)


def cmd_list(args: argparse.Namespace) -> int:
    """One line an experiment in the storage: its trials' summary, or why it has none."""
    from tune.core.errors import InputError
    from tune.store import records, storage
    from tune.store.rows import experiment_rows, summary_line

    where = storage_of(args)
    names = records.names_in(where)
    if not names:
        print(f"hpo: no experiments in {where}")
    for name in names:
        folder = records.experiment_dir(where, name)
        storage.pull(folder)
        try:
            record, rows = experiment_rows(folder)
            line = summary_line(rows, record.metric, record.expected_trials(len(rows)))
        except InputError as e:  # no trials saved yet, or a record that cannot be read
            line = e.lines()[0].removeprefix(f"{folder}: ")
        confirmed = " (+ confirm run)" if records.exists(records.confirm_dir(folder)) else ""
        print(f"{name}: {line}{confirmed}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from tune.store.rows import experiment_rows, experiment_table, retried_lines

    record, rows = experiment_rows(experiment_of(args))
    print(experiment_table(record, rows))
    for row in rows:
        if row.error:
            print(f"{row.trial_id} failed: {row.error}")
    for line in retried_lines(rows, most=len(rows)):
        print(line)
    return EXIT_OK
