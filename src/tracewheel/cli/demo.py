"""`tracewheel demo`: the flywheel end to end on the embedded stack.

Steps (each recorded in `<home>/demo/<profile>/state.json` when it finishes, so a stopped demo
started again skips what is done):

1. start the stack (or use the one running for this home);
2. `baseline`: the base model on the held-out suite (the agent caches it per base model);
3. `demonstrations`: the reference solutions of the train suite (its first
   `profile.demonstrations` tasks) replayed through the real gateway and published; the
   dataset's rules approve the verified ones;
4. `round1`: nothing is called — the build, the training job, its held-out evaluation and the
   gated hot-load follow by events; the demo waits for inference's decision;
5. `student` + `round2`: the deployed adapter runs the rest of the train suite (tasks no
   demonstration covered) with its traces published; its verified successes are approved and
   start the next round by the same events;
6. the table of rounds, `report.md`, `rounds.png` and `result.json` (`demo_report.write_report`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console

from tracewheel.cli.demo_profiles import DemoProfile, full_profile, quick_profile, with_settings
from tracewheel.cli.demo_report import (
    RoundRow,
    evaluation_of,
    rounds_json,
    rounds_markdown,
    rounds_table,
    write_report,
)
from tracewheel.cli.flywheel import Flywheel, RoundResult
from tracewheel.cli.progress import Progress
from tracewheel.cli.stack import StackInfo, Supervisor, home_dir, pid_alive
from tracewheel.core.errors import FailedPrecondition, TracewheelError
from tracewheel.core.files import write_json_atomically
from tracewheel.v1 import agent_pb2, inference_pb2

ALIAS = "agent"
EVAL_SUITE_VARIABLE = "TW_TRAINER_EVAL_SUITE"


def _tasks(progress: Progress) -> Callable[[int, int], None]:
    """A suite's progress (tasks done of all) onto a step's bar."""
    return lambda done, total: progress.update(done, total=total)


class DemoState:
    """Finished steps and their results, in a JSON file rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def done(self, step: str) -> bool:
        return step in self.steps

    def record(self, step: str, result: Any) -> Any:
        self.steps[step] = result
        write_json_atomically(self.path, self.steps)
        return result


class Demo:
    def __init__(self, profile: DemoProfile, home: Path, console: Console, suite: str = "") -> None:
        self.profile = profile
        self.home = home
        self.console = console
        self.suite = suite  # a registered suite's name; "": the shop
        self.eval_suite = suite or "heldout"  # its held-out split
        self.train_suite = suite or "train"  # its train split
        self.out_dir = home / "demo" / profile.name
        self.report_dir = home / "reports" / f"demo-{profile.name}"  # where the console lists reports
        self.state = DemoState(self.out_dir / "state.json")
        self.notes: list[str] = []

    def keep_settings(self, assignments: list[str]) -> None:
        """Records the `--set` assignments with the state, so that a run continued later uses the same.

        Raises:
            FailedPrecondition: steps of this home's demo finished under other assignments.
        """
        recorded = self.state.steps.get("settings", {}).get("set")
        if recorded is None and self.state.steps and assignments:
            recorded = []  # a demo begun before `--set` was recorded ran without any
        if recorded is not None and recorded != assignments:
            before = ", ".join(recorded) or "none"
            raise FailedPrecondition(
                f"this home's demo ({self.out_dir}) began with --set {before}; continue it with the same, "
                "or start over in another TRACEWHEEL_HOME"
            )
        if recorded is None:
            self.state.record("settings", {"set": assignments})
        if assignments:
            settings = ", ".join(assignments)
            self.console.print(f"settings over the {self.profile.name} profile: {settings}")
            self.notes.append(f"settings over the {self.profile.name} profile (`--set`): {settings}")

    def step(self, name: str, title: str, action: Callable[[Progress], Any]) -> Any:
        """Runs `action` once (its result is kept), with progress it updates (tasks done, status)."""
        if self.state.done(name):
            self.console.print(f"[dim]✓ {title} (done earlier)[/dim]")
            return self.state.steps[name]
        started = time.monotonic()
        with Progress(self.console, title, plain_every_s=30.0) as progress:
            result = action(progress)
        if isinstance(result, dict):
            result = {**result, "wall_s": time.monotonic() - started}
        self.console.print(f"[green]✓[/green] {title} ({time.monotonic() - started:.0f} s)")
        return self.state.record(name, result)

    def run(self, fw: Flywheel) -> list[RoundRow]:
        p = self.profile
        base = fw.base_model()
        baseline = self.step(
            "baseline",
            f"measuring the base model {base} on {self.eval_suite}",
            lambda progress: fw.evaluate(
                base, self.eval_suite, p.eval_timeout_s, use_cache=True, on_progress=_tasks(progress)
            ),
        )
        rows = [RoundRow(0, base, evaluation_of(baseline), baseline["wall_s"], "base")]
        known = self.step("jobs_before_round1", "noting the trainer's jobs", lambda _: {"jobs": fw.job_ids()})
        demos = self.step(
            "demonstrations",
            f"replaying the reference solutions of {self.train_suite} through the gateway",
            lambda progress: fw.collect_demonstrations(
                p.eval_timeout_s, count=p.demonstrations, suite=self.train_suite, on_progress=_tasks(progress)
            ),
        )
        verified = round(demos["success_rate"] * demos["tasks"])
        self.console.print(f"  {verified}/{demos['tasks']} demonstrations verified by their checkers and published")
        round1 = self._round(fw, 1, set(known["jobs"]), demos["tasks"])
        rows.append(round1)
        if p.rounds < 2:
            return rows
        if round1.deployed != "yes":
            self.notes.append("round 2 skipped: the round-1 adapter was not deployed, so there is no student to run")
            return rows
        known = self.step("jobs_before_round2", "noting the trainer's jobs", lambda _: {"jobs": fw.job_ids()})
        student = self.step(
            "student",
            "the deployed adapter runs the train suite (its traces are published)",
            lambda progress: fw.run_student(
                ALIAS, p.eval_timeout_s, first=p.demonstrations, suite=self.train_suite, on_progress=_tasks(progress)
            ),
        )
        successes = round(student["success_rate"] * student["tasks"])
        self.console.print(f"  the student solved {successes}/{student['tasks']} train tasks (verified)")
        if successes == 0:
            self.notes.append("round 2 skipped: the student solved no train task, so no new trace was approved")
            return rows
        rows.append(self._round(fw, 2, set(known["jobs"]), successes))
        return rows

    def _round(self, fw: Flywheel, number: int, known_jobs: set[str], new_traces: int) -> RoundRow:
        result = self.step(
            f"round{number}",
            f"round {number}: dataset build -> training -> held-out evaluation -> gated hot-load (by events)",
            lambda progress: asdict(
                fw.wait_round(known_jobs, self.profile.round_timeout_s, lambda text: progress.update(note=text))
            ),
        )
        outcome = RoundResult(**{k: v for k, v in result.items() if k != "wall_s"})
        if outcome.state != "SUCCEEDED":
            deployed = f"failed: {outcome.error}"
        else:
            deployed = "yes" if outcome.deployed else f"no: {outcome.deploy_reason}"
        metrics = evaluation_of(outcome.metrics)
        return RoundRow(number, outcome.job_id, metrics, result["wall_s"], deployed, new_traces)

    def report(self, rows: list[RoundRow], total_s: float) -> Path:
        self.console.print(rounds_table(rows, self.eval_suite))
        where = {"report": str(self.report_dir / "report.md"), "state": str(self.state.path)}
        for name in ("round1", "round2"):
            if name in self.state.steps:
                where[f"{name} adapter"] = self.state.steps[name]["adapter_path"]
                where[f"{name} dataset"] = self.state.steps[name]["dataset_path"]
        notes = [*self.notes, f"whole demo: {total_s:.0f} s of wall time in this run (steps done earlier not counted)"]
        markdown = rounds_markdown(rows, where, notes, self.eval_suite)
        self.report_dir.mkdir(parents=True, exist_ok=True)
        report = write_report(self.report_dir, rows, markdown, rounds_json(rows))["markdown"]
        for name, path in where.items():
            self.console.print(f"  {name}: {path}")
        for note in notes:
            self.console.print(f"  [yellow]{note}[/yellow]")
        return report


def demo_suite(given: str | None) -> tuple[str, Path | None]:
    """The suite `--suite` names (a registered name, or a file whose suite is registered when the stack
    is up) and that file; ("", None): the shop.

    Raises:
        SuiteFileError: the file does not validate.
    """
    if not given:
        return "", None
    path = Path(given)
    if path.suffix in (".yaml", ".yml", ".jsonl") and path.exists():
        from tracewheel.agent.suites import read_suite_file

        return read_suite_file(path).name, path
    return given, None


def register_suite(fw: Flywheel, path: Path, console: Console) -> None:
    """Registers the suite file with the stack's agent (replacing an earlier copy)."""
    request = agent_pb2.AddSuiteRequest(filename=str(path), content=path.read_text(encoding="utf-8"), replace=True)
    info = fw.agent.AddSuite(request, timeout=60)
    console.print(f"suite {info.name} registered: {info.train_tasks} train and {info.heldout_tasks} held-out tasks")


def check_quick(rows: list[RoundRow], fw: Flywheel) -> None:
    """What `--quick` asserts: traces alone led to a trained, evaluated, deployed adapter.

    Raises:
        FailedPrecondition: a step of the event-driven path did not happen.
    """
    if len(rows) < 2:
        raise FailedPrecondition("no training round finished")
    round1 = rows[1]
    if round1.deployed != "yes":
        raise FailedPrecondition(f"round 1 adapter {round1.model} was not deployed ({round1.deployed})")
    if not round1.metrics:
        raise FailedPrecondition(f"round 1 adapter {round1.model} was not evaluated")
    alias = {
        m.name: m.target for m in fw.inference.ListModels(inference_pb2.ListModelsRequest(), timeout=30).models
    }.get(ALIAS)
    latest = rows[-1].model if rows[-1].deployed == "yes" else round1.model
    if alias != latest:
        raise FailedPrecondition(f"alias {ALIAS!r} points at {alias!r}, not at the deployed adapter {latest}")


def _demo_profile(quick: bool) -> tuple[DemoProfile, Path]:
    """The demo's profile and home: the quick one (a tiny test model, its own home) or the full one."""
    if quick:
        from tracewheel.inference.testing import tiny_test_model

        return quick_profile(tiny_test_model()), home_dir() / "quick"
    return full_profile(), home_dir()


def _start_stack(
    args: argparse.Namespace, profile: DemoProfile, home: Path, console: Console, started: float
) -> tuple[Supervisor, StackInfo]:
    """Starts the stack for `home` (services log to `<home>/logs/stack.log`): its supervisor and what runs."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    log = (home / "logs" / "stack.log").open("a")
    supervisor = Supervisor(
        home, port_offset=args.port_offset, env=profile.env, sink=log, health_timeout_s=args.health_timeout
    )
    with console.status(f"starting the stack in {home} (services log to {log.name})"):
        running = supervisor.start()
    console.print(f"[green]✓[/green] stack up in {time.monotonic() - started:.0f} s (logs: {log.name})")
    return supervisor, running


def demo(args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    profile, home = _demo_profile(args.quick)
    suite, suite_file = demo_suite(args.suite)
    # the trainer scores each round on the suite's held-out split: the gate then compares on it
    assignments = [*args.set, f"{EVAL_SUITE_VARIABLE}={suite}"] if suite else list(args.set)
    profile = with_settings(profile, assignments)
    running = StackInfo.read(home)
    supervisor = None
    started_here = running is None or not pid_alive(running.supervisor_pid)
    if assignments and not started_here:
        raise FailedPrecondition(
            f"--set and --suite change the settings of the services the demo starts, and a stack already runs "
            f"for {home} with its own: stop it (Ctrl-C on `tracewheel up`) or use another TRACEWHEEL_HOME"
        )
    runner = Demo(profile, home, console, suite)
    runner.keep_settings(assignments)  # before anything starts: a continued demo keeps its settings
    if started_here:
        supervisor, running = _start_stack(args, profile, home, console, started)
    else:
        assert running is not None  # not started here: one was running
        console.print(f"using the stack already running for {home}")
    flywheel = Flywheel(running)
    try:
        if suite_file is not None:
            register_suite(flywheel, suite_file, console)
        rows = runner.run(flywheel)
        runner.report(rows, time.monotonic() - started)
        if args.quick:
            check_quick(rows, flywheel)
            console.print(
                "[green]quick demo: traces -> build -> training -> evaluation -> deployment, by events[/green]"
            )
        return 0
    except TracewheelError as exc:
        console.print(f"[red]demo stopped: {exc}[/red] (run it again to continue from the last finished step)")
        return 1
    except grpc.RpcError as exc:
        console.print(f"[red]demo stopped: a service answered {exc.code().name}: {exc.details()}[/red]")
        console.print("run it again to continue from the last finished step")
        return 1
    finally:
        flywheel.close()
        if supervisor is not None:
            supervisor.stop()
