"""The bundled shop website that task suites run against (no internet needed)."""

from tracewheel.agent.tasksite.app import create_app
from tracewheel.agent.tasksite.catalog import Catalog, Product, build_catalog, format_price

__all__ = ["Catalog", "Product", "build_catalog", "create_app", "format_price"]
