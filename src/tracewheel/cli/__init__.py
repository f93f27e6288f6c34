"""The tracewheel command line: local supervisor, demo and client commands."""
