"""tracewheel mcp-gateway service."""
