"""Entrypoint: `python -m tracewheel.dataset`."""

from tracewheel.core.service import service_main
from tracewheel.dataset.config import DatasetSettings


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("dataset", DatasetSettings, ["tracewheel.v1.Dataset"])


if __name__ == "__main__":
    main()
