"""tracewheel dataset service."""
