"""Entrypoint: `python -m tracewheel.agent`."""

from tracewheel.agent.config import AgentSettings
from tracewheel.core.service import service_main


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("agent", AgentSettings, ["tracewheel.v1.Agent"])


if __name__ == "__main__":
    main()
