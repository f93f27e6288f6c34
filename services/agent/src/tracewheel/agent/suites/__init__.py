"""Task suites as data: the suite file format, its checkers and the registry (docs/suites.md).

A team describes its tasks in a YAML or JSONL file (`SuiteSpec`, JSON Schema from
`suite_json_schema`); `parse_suite` validates it whole, `SuiteRegistry` keeps it, and every task
runs and is checked as the bundled shop's are (`tracewheel.agent.suites.shop`).
"""

from tracewheel.agent.suites.checks import CheckContext, CheckResult, PageState, run_check
from tracewheel.agent.suites.files import SuiteFileError, parse_suite, read_suite_file
from tracewheel.agent.suites.registry import SuiteRegistry
from tracewheel.agent.suites.spec import Check, SuiteSpec, TaskSpec, suite_json_schema
from tracewheel.agent.suites.suite import Suite, SuiteRef, suite_from_spec

__all__ = [
    "Check",
    "CheckContext",
    "CheckResult",
    "PageState",
    "Suite",
    "SuiteFileError",
    "SuiteRef",
    "SuiteRegistry",
    "SuiteSpec",
    "TaskSpec",
    "parse_suite",
    "read_suite_file",
    "run_check",
    "suite_from_spec",
    "suite_json_schema",
]
