"""Entrypoint: `python -m tracewheel.trainer`."""

from tracewheel.core.service import service_main
from tracewheel.trainer.config import TrainerSettings


def main() -> None:
    # The domain servicers register here as the service grows; until then it serves health.
    service_main("trainer", TrainerSettings, ["tracewheel.v1.Trainer"])


if __name__ == "__main__":
    main()
