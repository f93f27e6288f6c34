"""Serve the task site: `python -m tracewheel.agent.tasksite --port 8400`."""

from __future__ import annotations

import argparse

import uvicorn

from tracewheel.agent.tasksite.app import create_app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the site with uvicorn until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tracewheel.agent.tasksite", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8400, help="port to bind (default 8400)")
    parser.add_argument("--seed", type=int, default=0, help="catalogue seed (default 0)")
    parser.add_argument("--n-items", type=int, default=300, help="number of products (default 300)")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.seed, args.n_items), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
