"""tracewheel trainer service."""
