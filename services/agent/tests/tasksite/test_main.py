import pytest
from starlette.applications import Starlette

from tracewheel.agent.tasksite import __main__ as runner


def test_runner_serves_the_seeded_site_on_the_given_port(monkeypatch: pytest.MonkeyPatch) -> None:
    served = {}

    def fake_run(app: Starlette, **kwargs: object) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(runner.uvicorn, "run", fake_run)
    runner.main(["--port", "8401", "--seed", "2", "--n-items", "50"])
    assert served["port"] == 8401
    assert served["host"] == "127.0.0.1"
    assert len(served["app"].state.catalog.products) == 50
    assert served["app"].state.catalog.seed == 2
