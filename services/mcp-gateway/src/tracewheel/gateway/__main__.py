"""Entrypoint: `python -m tracewheel.gateway`."""

from tracewheel.core.service import service_main
from tracewheel.gateway.config import GatewaySettings


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("gateway", GatewaySettings, ["tracewheel.v1.Gateway"])


if __name__ == "__main__":
    main()
