"""tracewheel agent service."""
