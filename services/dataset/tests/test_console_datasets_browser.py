"""The dataset pages in headless Chromium over a real build: list, manifest, a hostile row as trained."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from playwright.async_api import Page, expect

from tracewheel.dataset.console import ConsoleConfig
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory
from .web import serving, shoot, url_of

pytestmark = pytest.mark.slow

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='img'\"> The Red kettle."


def _fill(store: TraceStore, make_trace: TraceFactory) -> None:
    for number in range(1, 7):
        store.ingest(make_trace(f"run-{number}", task_id=f"task-{number}"))
    hostile = make_trace("run-hostile", task_id="hostile", answer=HOSTILE)
    hostile["messages"][1]["content"] = "Which <b>product</b>? <img src=x onerror=\"document.title='user'\">"
    store.ingest(hostile)
    long = make_trace("run-long", task_id="long")
    long["messages"][3]["content"] = "- row\n" * 1500
    store.ingest(long)
    for stored in store.list_traces(page_size=100).traces:
        store.set_status(stored.trace.id, CurationStatus.APPROVED)


def _row_of(folder: Path, trace_id: str) -> tuple[str, int]:
    for split in ("train", "eval"):
        ids = pq.read_table(folder / f"{split}.parquet", columns=["trace_id"]).column("trace_id").to_pylist()
        if trace_id in ids:
            return split, ids.index(trace_id)
    raise AssertionError(f"{trace_id} is in no split")


@pytest.fixture
async def served(
    store: TraceStore, make_trace: TraceFactory, make_builder: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[tuple[str, Path]]:
    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    _fill(store, make_trace)
    builder = make_builder(base_model=str(smollm2_tokenizer_dir(TEST_CACHE)), eval_ratio=0.3, max_length=2048)
    folder = Path(builder.build().record.path)
    app = create_app(store, None, console=ConsoleConfig(artifacts_dir=folder.parent))  # type: ignore[arg-type]
    async with serving(app) as server:
        yield url_of(server), folder


async def test_a_build_and_a_hostile_row_as_trained(page: Page, served: tuple[str, Path]) -> None:
    base_url, folder = served
    version = folder.name
    await page.goto(f"{base_url}/console/datasets")
    await expect(page.locator("nav.sections a[aria-current]")).to_have_text("Datasets")
    await expect(page.locator(f"tr[data-version='{version}'] td").nth(6)).to_have_text("1")  # run-long dropped
    await shoot(page, "datasets-list")

    await page.get_by_role("link", name=version).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(version)
    await expect(page.locator("table.dropped")).to_contain_text("run-long")
    await expect(page.locator("table.dropped")).to_contain_text("> max_length 2048")
    await expect(page.locator("dl.manifest")).to_contain_text("smollm2_tools_train (sha256")
    await shoot(page, "datasets-manifest")

    split, index = _row_of(folder, "run-hostile")
    await page.locator(f"section[data-split={split}] a.row-link", has_text=str(index)).first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"{split.capitalize()} row {index}")
    tokens = page.locator("pre.tokens")
    await expect(tokens).to_contain_text(HOSTILE)
    await expect(tokens).to_contain_text("Which <b>product</b>? <img src=x")
    assert await page.locator("main img, main script, pre.tokens b").count() == 0
    trained = await page.locator("pre.tokens span.trained").all_text_contents()
    assert trained[-1] == f"<think>\nIt is listed first.\n</think>\n{HOSTILE}<|im_end|>"
    assert "browser_navigate" in trained[0] and len(trained) == 2
    context = "".join(await page.locator("pre.tokens span.context").all_text_contents())
    assert "<|im_start|>user\nWhich <b>product</b>?" in context and HOSTILE not in context
    count = int(await page.locator("#trained-count").text_content() or "0")
    assert count == sum(label != -100 for label in _labels(folder, split, index))
    await shoot(page, "datasets-row")
    assert await page.title() == f"{split} row {index} · {version} · tracewheel"

    await _neighbours(page, split, index)
    await page.locator("#trace-link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("run-hostile")


def _labels(folder: Path, split: str, index: int) -> list[int]:
    return pq.read_table(folder / f"{split}.parquet", columns=["labels"]).column("labels")[index].as_py()


async def _neighbours(page: Page, split: str, index: int) -> None:
    """Next then previous lands back on the row (whichever of them exists)."""
    link, back = ("next", "prev") if await page.locator("a[rel=next]").count() else ("prev", "next")
    await page.locator(f"a[rel={link}]").click()
    await expect(page.locator("main")).not_to_have_attribute("data-index", str(index))
    await page.locator(f"a[rel={back}]").click()
    await expect(page.locator("main")).to_have_attribute("data-index", str(index))
    await expect(page.locator("main")).to_have_attribute("data-split", split)
