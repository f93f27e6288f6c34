"""Entrypoint: `python -m tracewheel.inference`."""

from tracewheel.core.service import service_main
from tracewheel.inference.config import InferenceSettings


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("inference", InferenceSettings, ["tracewheel.v1.InferenceControl"])


if __name__ == "__main__":
    main()
