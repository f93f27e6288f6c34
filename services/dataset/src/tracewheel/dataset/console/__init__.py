"""The flywheel console: every round after curation, in the browser, behind the curation UI's auth.

Served by the dataset service's web app. The dataset service owns the traces and the builds; jobs,
evaluations, deployments and suites come from the trainer, the inference service and the agent
over gRPC (`peers.py`), so a page shows what those services hold now, not a copy. A peer without
an address, or one that does not answer, leaves a notice on the pages that need it.

Pages are server-rendered (Jinja2, autoescaped) under the same Content-Security-Policy as the
curation pages: charts are inline SVG drawn on the server (`chart.py`), the one script is
`/static/console.js`, and every change (cancel, deploy, roll back, move the alias) is a POST
with the session's CSRF token, confirmed in the page first.
"""

from __future__ import annotations

from tracewheel.dataset.console.context import ConsoleConfig, ConsoleContext, add_console_routes
from tracewheel.dataset.console.peers import Peers

__all__ = ["ConsoleConfig", "ConsoleContext", "Peers", "add_console_routes"]
