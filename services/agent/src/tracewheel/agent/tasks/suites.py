"""Task suites `train` and `heldout`, generated from a seed and split so held-out is unseen.

The split is by item and by wording: the catalogue's SKUs are shuffled with the seed and a
fixed share goes to held-out; a task draws every product it involves (including partners and
related items) from its suite's share only. Held-out tasks use only each template's held-out
phrasings, which train tasks never use.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from tracewheel.agent.suites.checks.context import CheckContext, CheckResult
from tracewheel.agent.suites.spec import Python
from tracewheel.agent.tasks.model import Task, Verdict
from tracewheel.agent.tasks.templates import TEMPLATES, Draft, Template
from tracewheel.agent.tasksite.catalog import Catalog, build_catalog
from tracewheel.core.errors import FailedPrecondition, InvalidArgument, NotFound

logger = logging.getLogger(__name__)

SUITES = ("train", "heldout")
DEFAULT_SIZES = {"train": 40, "heldout": 20}
HELDOUT_SHARE = 0.3
"""Share of the catalogue's items reserved for held-out tasks."""
DEFAULT_BASE_URL = "http://127.0.0.1:8400"
FORM_TEMPLATES = frozenset({"order_form"})
"""Templates whose checker reads the site's `/api/state` (the orders placed)."""
SHOP_CHECK = "tracewheel.agent.tasks.suites:check_shop_task"


def split_items(catalog: Catalog) -> dict[str, frozenset[str]]:
    """SKUs per suite: a seeded shuffle of the catalogue, cut at `HELDOUT_SHARE`."""
    skus = [p.sku for p in catalog.products]
    random.Random(f"split-{catalog.seed}").shuffle(skus)
    cut = round(len(skus) * HELDOUT_SHARE)
    return {"heldout": frozenset(skus[:cut]), "train": frozenset(skus[cut:])}


def phrasings(template: Template, suite: str) -> tuple[str, ...]:
    """The prompt wordings a suite may use for a template."""
    return template.heldout_phrasings if suite == "heldout" else template.train_phrasings


def load_suite(
    name: str,
    seed: int = 0,
    *,
    size: int | None = None,
    n_items: int = 300,
    base_url: str = DEFAULT_BASE_URL,
) -> list[Task]:
    """Generate a suite's tasks for the site `create_app(seed, n_items)` served at `base_url`.

    Templates take turns, so every template is represented once `size` >= their number.

    Raises:
        NotFound: `name` is not a known suite.
        InvalidArgument: `size` is below 1.
        FailedPrecondition: the suite's share of items is too small for `size` tasks.
    """
    if name not in SUITES:
        raise NotFound(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    size = DEFAULT_SIZES[name] if size is None else size
    if size < 1:
        raise InvalidArgument(f"suite size must be at least 1, got {size}")
    catalog = build_catalog(seed, n_items)
    pool = split_items(catalog)[name]
    rng = random.Random(f"{name}-{seed}")
    candidates = [p for p in catalog.products if p.sku in pool]
    rng.shuffle(candidates)
    templates = list(TEMPLATES.values())
    tasks: list[Task] = []
    for index in range(size):
        template = templates[index % len(templates)]
        draft = _draft_next(template, catalog, candidates, pool, rng, base_url.rstrip("/"))
        if draft is None:
            raise FailedPrecondition(f"too few {name} items for {size} tasks; raise n_items or lower size")
        tasks.append(_make_task(name, index, template, draft, rng, base_url))
    logger.info("suite %s (seed %d): %d tasks from %d items", name, seed, len(tasks), len(pool))
    return tasks


def slice_tasks(tasks: list[Task], first: int = 0, count: int = 0) -> list[Task]:
    """Tasks `[first, first + count)` of a suite (`count` 0: to the end).

    Suites are generated in a fixed order, so a slice names the same tasks on every run: the
    demo replays demonstrations on the train suite's first tasks and lets the student try the
    others.

    Raises:
        InvalidArgument: a negative bound, or `first` past the suite's last task.
    """
    if first < 0 or count < 0:
        raise InvalidArgument(f"a task slice needs first_task >= 0 and task_count >= 0, got {first} and {count}")
    if first >= len(tasks):
        raise InvalidArgument(f"first_task {first} is past the end of a suite of {len(tasks)} tasks")
    return tasks[first : first + count] if count else tasks[first:]


def _draft_next(
    template: Template,
    catalog: Catalog,
    candidates: list[Any],
    pool: frozenset[str],
    rng: random.Random,
    base_url: str,
) -> Draft | None:
    """Build from the first unused candidate that fits the template, consuming it."""
    for position, item in enumerate(candidates):
        draft = template.build(catalog, item, pool, rng, base_url)
        if draft is not None:
            del candidates[position]
            draft.params.setdefault("skus", [item.sku])
            return draft
    return None


def _make_task(suite: str, index: int, template: Template, draft: Draft, rng: random.Random, base_url: str) -> Task:
    wordings = phrasings(template, suite)
    choice = rng.randrange(len(wordings))
    offset = 0 if suite == "heldout" else len(template.heldout_phrasings)
    params = {**draft.params, "phrasing": f"{template.name}/{offset + choice}"}
    prompt = f"{wordings[choice].format(**params)} The shop is at {base_url}/."
    task_id = f"{suite}-{index:03d}-{template.name}"
    return Task(
        suite,
        task_id,
        template.name,
        prompt,
        params,
        tuple(draft.steps),
        draft.answer,
        draft.answer_reasoning,
        split=suite,
        check=_check_spec(template.name, params, base_url),
    )


def _check_spec(template: str, params: Mapping[str, Any], base_url: str) -> Python:
    """The shop's checker as any suite's: a `python` check, its entry point `check_shop_task`."""
    state = {"state_url": f"{base_url.rstrip('/')}/api/state"} if template in FORM_TEMPLATES else {}
    return Python(kind="python", entry_point=SHOP_CHECK, params={"template": template, **params, **state})


async def check_shop_task(context: CheckContext) -> CheckResult:
    """The shop's entry point: the template's checker on the final answer (and, for form tasks, the
    site's `/api/state` with the orders placed).

    Raises:
        httpx.HTTPError: the site did not answer (the check is then an error, not a failure).
        NotFound: an unknown template.
    """
    params = dict(context.params)
    template, state_url = params.pop("template"), params.pop("state_url", None)
    state: dict[str, Any] = {}
    if state_url is not None:
        response = await context.http.get(state_url)
        response.raise_for_status()
        state = response.json()
    task = Task("", "", template, "", params)
    verdict = check_task(task, context.final_answer, state)
    return CheckResult.of(verdict.passed, verdict.reason)


def check_task(task: Task, answer: str, site_state: Mapping[str, Any] | None = None) -> Verdict:
    """Judge a final answer (and the site's `/api/state`, for form tasks) against a task.

    Raises:
        NotFound: the task's template is unknown.
    """
    template = TEMPLATES.get(task.template)
    if template is None:
        raise NotFound(f"unknown task template {task.template!r}; known: {', '.join(TEMPLATES)}")
    return template.check(task.params, answer, site_state or {})
