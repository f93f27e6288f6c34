"""Entrypoint: `python -m tracewheel.agent`."""

from tracewheel.core.service import service_main
from tracewheel.agent.config import AgentSettings


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("agent", AgentSettings, ["tracewheel.v1.Agent"])


if __name__ == "__main__":
    main()
