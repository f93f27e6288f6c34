"""tracewheel inference service."""
