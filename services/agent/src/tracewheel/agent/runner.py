"""What the agent service does, without transport: run a task, run a suite, evaluate a model.

The gRPC servicer (`server.py`) only translates to and from these methods, so the same API
works in-process (CLI, tests) and over the network.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai

from tracewheel.agent.checking import core_task, judge
from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.eval_cache import EvalCache, cache_key
from tracewheel.agent.evaluation import Mode, ProgressSink, evaluate
from tracewheel.agent.loop import Approver, EventSink, run_agent
from tracewheel.agent.suites.checks import InferenceEndpoint, PageState
from tracewheel.agent.suites.registry import Entry, Resolved, SuiteRegistry
from tracewheel.agent.suites.shop import shop_suite
from tracewheel.agent.suites.suite import SHOP, Suite, SuiteRef
from tracewheel.agent.task_session import final_page, open_task_session
from tracewheel.agent.tasks import Task, slice_tasks
from tracewheel.agent.tools import ToolSessionFactory
from tracewheel.core import trace as core
from tracewheel.core.errors import FailedPrecondition, InvalidArgument
from tracewheel.core.evaluation import EvalResult

logger = logging.getLogger(__name__)

TraceSink = Callable[[core.Trace], Awaitable[None]]


class AgentRunner:
    """Runs tasks, suites and evaluations against one inference server and one tool factory.

    Args:
        llm: OpenAI client on the inference server (`max_retries=0`; the loop retries).
        factory: opens a tool session per task.
        config: default loop settings.
        default_model: the model a request without one uses (inference's deploy alias).
        site_url: the task site the suites point at.
        seed, n_items: the site's catalogue, which the suites must match.
        concurrency: tasks at once when a request does not say.
        on_trace: given every finished trace of runs that are published (tasks, suites).
        suite_sizes: tasks per suite where not the default.
        eval_cache: keeps evaluations asked for with `use_cache`.
        on_eval_trace: given every trace of an evaluation (kept to be read, never published).
        suites_dir: where registered suite files are kept (None: the bundled shop only).
        inference: the inference server, where judges without a base_url are asked.
    """

    def __init__(
        self,
        *,
        llm: openai.AsyncOpenAI,
        factory: ToolSessionFactory,
        config: LoopOptions,
        default_model: str,
        site_url: str,
        seed: int = 0,
        n_items: int = 300,
        concurrency: int = 2,
        on_trace: TraceSink | None = None,
        suite_sizes: dict[str, int] | None = None,
        eval_cache: EvalCache | None = None,
        on_eval_trace: TraceSink | None = None,
        suites_dir: Path | None = None,
        inference: InferenceEndpoint | None = None,
    ) -> None:
        self.llm = llm
        self.factory = factory
        self.config = config
        self.default_model = default_model
        self.site_url = site_url
        self.seed = seed
        self.n_items = n_items
        self.concurrency = concurrency
        self.on_trace = on_trace
        self.suite_sizes = suite_sizes or {}
        self.eval_cache = eval_cache
        self.on_eval_trace = on_eval_trace
        self.inference = inference
        shop = functools.partial(shop_suite, seed, n_items, self.suite_sizes, site_url)
        self.suites = SuiteRegistry(suites_dir, {SHOP: shop})

    def suite(self, name: str) -> list[Task]:
        """The tasks a suite reference names (`train`, `heldout`, `NAME`, `NAME:SPLIT`).

        Raises:
            NotFound: an unknown suite.
        """
        return self.suites.resolve(name, None).tasks

    def find_task(self, suite: str, task_id: str) -> Task:
        """Raises:
        NotFound: no such suite or task.
        """
        return self.suites.get(SuiteRef.parse(suite).name).task(task_id)

    def add_suite(self, content: str, filename: str, *, replace: bool = False) -> Suite:
        """Validates and registers a suite file (nothing is registered when it does not validate).

        Raises:
            SuiteFileError: the file does not validate; every problem names the file, task and field.
            Conflict: the name is taken and `replace` is not set.
            FailedPrecondition: this agent keeps no suite files.
        """
        return self.suites.add(content, filename, replace=replace)

    def list_suites(self) -> list[Entry]:
        """Every registered suite (a file that no longer loads comes with its error)."""
        return self.suites.entries()

    def get_suite(self, name: str) -> Suite:
        """Raises:
        NotFound: no suite of that name.
        SuiteFileError: its file no longer validates.
        """
        return self.suites.get(name)

    def _run_config(self, max_steps: int, time_limit_s: float) -> LoopOptions:
        """The service's loop options with a run's own step and time limits (0: the service's)."""
        config = self.config
        if max_steps > 0:
            config = config.model_copy(update={"max_steps": max_steps})
        if time_limit_s > 0:
            config = config.model_copy(update={"time_limit_s": time_limit_s})
        return config

    async def _judged(self, task: Task, trace: core.Trace, page: PageState | None) -> core.Trace:
        """`trace` with the task's checks' outcome."""
        outcome = await judge(
            task, trace.outcome or core.Outcome(), page=page, messages=trace.messages, inference=self.inference
        )
        return trace.model_copy(update={"outcome": outcome})

    async def run_task(
        self,
        *,
        prompt: str = "",
        suite: str = "",
        task_id: str = "",
        model: str = "",
        max_steps: int = 0,
        time_limit_s: float = 0.0,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
    ) -> core.Trace:
        """Runs a free-form prompt or a suite task (checked) and hands the trace on (a held-out task's
        to `on_eval_trace`, never published).

        Raises:
            InvalidArgument: neither a prompt nor a suite task, or both.
            NotFound: no such suite or task.
        """
        if bool(prompt) == bool(suite and task_id):
            raise InvalidArgument("give either a prompt, or a suite and a task_id")
        task = self.find_task(suite, task_id) if suite else None
        config = self._run_config(max_steps, time_limit_s)
        tools, config = await open_task_session(self.factory, task, config)
        page = None
        try:
            trace = await run_agent(
                task.prompt if task else prompt,
                llm=self.llm,
                model=model or self.default_model,
                tools=tools,
                config=config,
                task=core_task(task) if task else None,
                approver=approver,
                on_event=on_event,
            )
            if task is not None:
                page = await final_page(task, tools)
        finally:
            await tools.close()
        if task is not None:
            trace = await self._judged(task, trace, page)
        # a held-out task's run is kept like an evaluation's, never published: it must not feed a build
        sink = self.on_eval_trace if task is not None and task.split == "heldout" else self.on_trace
        if sink is not None:
            await sink(trace)
        return trace

    async def run_suite(
        self,
        suite: str,
        *,
        model: str = "",
        concurrency: int = 0,
        publish: bool = True,
        first_task: int = 0,
        task_count: int = 0,
        on_progress: ProgressSink | None = None,
    ) -> EvalResult:
        """Runs a suite's tasks (its train split unless the reference names one; all, or the slice
        `first_task`, `task_count`); their traces go on (to the dataset) when `publish`. `on_progress`
        is told as tasks finish.

        Raises:
            NotFound: an unknown suite.
            InvalidArgument: a slice outside the suite, or held-out tasks to publish.
        """
        resolved = self.suites.resolve(suite, "train")
        if publish:
            _refuse_heldout(resolved, "publish the traces of")
        tasks = slice_tasks(resolved.tasks, first_task, task_count)
        return await self._run(resolved, tasks, model or self.default_model, "agent", concurrency, publish, on_progress)

    async def _run(
        self,
        resolved: Resolved,
        tasks: list[Task],
        model: str,
        mode: Mode,
        concurrency: int,
        publish: bool,
        on_progress: ProgressSink | None = None,
    ) -> EvalResult:
        """Runs and checks `tasks`; when `publish`, their traces go on together when all are done
        (otherwise to `on_eval_trace`).

        One burst per suite: the dataset's debounced trigger then builds once per suite run (one
        training job per round), however long the gaps between tasks are.
        """
        sink = self.on_trace if publish else self.on_eval_trace
        finished: list[core.Trace] = []

        async def keep(trace: core.Trace) -> None:
            finished.append(trace)

        report = await evaluate(
            tasks,
            factory=self.factory,
            reset_url=resolved.suite.reset_url,
            suite=str(resolved.ref),
            model=model,
            llm=self.llm,
            config=self.config,
            concurrency=concurrency or self.concurrency,
            mode=mode,
            inference=self.inference,
            on_trace=None if sink is None else keep,
            on_progress=on_progress,
        )
        if sink is not None:
            for trace in finished:
                await sink(trace)
        return report

    async def evaluate(
        self,
        model: str,
        suite: str = "heldout",
        *,
        concurrency: int = 0,
        use_cache: bool = False,
        on_progress: ProgressSink | None = None,
    ) -> EvalResult:
        """Scores `model` on `suite`; its traces are never published (held-out stays unseen).
        `on_progress` is told as tasks finish.

        With `use_cache`, an earlier evaluation of the same model, tasks and settings is returned
        instead of running again.

        Raises:
            NotFound: an unknown suite.
            InvalidArgument: `use_cache` for an alias (its target moves), or for no model.
        """
        resolved = self.suites.resolve(suite or "heldout", "heldout")
        model = model or self.default_model
        tasks, suite = resolved.tasks, str(resolved.ref)
        key = None
        if use_cache and self.eval_cache is not None:
            await self._refuse_alias(model)
            key = cache_key(model, tasks, self.config)
            cached = self.eval_cache.get(key)
            if cached is not None:
                logger.info("evaluation of %s on %s read from the cache", model, suite)
                return cached
        report = await self._run(resolved, tasks, model, "agent", concurrency, False, on_progress)
        if key is not None:
            self.eval_cache.put(key, report)  # type: ignore[union-attr]
        return report

    async def _refuse_alias(self, model: str) -> None:
        served = {m.id: m for m in (await self.llm.models.list()).data}
        if getattr(served.get(model), "kind", "") == "alias" or model == self.default_model:
            raise InvalidArgument(f"{model!r} is an alias; evaluations of an alias are not cached (its target moves)")

    async def collect_demonstrations(
        self,
        suite: str = "train",
        *,
        concurrency: int = 0,
        first_task: int = 0,
        task_count: int = 0,
        on_progress: ProgressSink | None = None,
    ) -> EvalResult:
        """Replays the reference solutions of a suite's train split (all its tasks with one, or a slice
        of those); the checked traces go on. `on_progress` is told as tasks finish.

        Raises:
            NotFound: an unknown suite.
            InvalidArgument: a slice outside the tasks, or the held-out split.
            FailedPrecondition: no task of the split has a reference solution.
        """
        resolved = self.suites.resolve(suite or "train", "train")
        _refuse_heldout(resolved, "replay demonstrations of")
        with_reference = [task for task in resolved.tasks if task.has_reference]
        if not with_reference:
            raise FailedPrecondition(f"no task of {resolved.ref} has a reference solution to replay")
        tasks = slice_tasks(with_reference, first_task, task_count)
        return await self._run(resolved, tasks, "reference", "replay", concurrency, True, on_progress)


def _refuse_heldout(resolved: Resolved, action: str) -> None:
    """Held-out tasks never feed a build: nothing of theirs is published.

    Raises:
        InvalidArgument: the reference names held-out tasks.
    """
    if resolved.ref.split != "train":
        raise InvalidArgument(
            f"will not {action} {resolved.ref}: held-out tasks never feed a build; name the train split "
            f"({resolved.ref.name}:train) or evaluate the held-out one"
        )
