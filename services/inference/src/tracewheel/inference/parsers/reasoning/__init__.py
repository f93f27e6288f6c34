"""Reasoning parsers, one per module; `tracewheel.inference.parsers.registry` names them."""
