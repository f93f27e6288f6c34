"""Built-in browser tools (Python Playwright on Debian's chromium), matching @playwright/mcp.

One module per tool group (navigate, snapshot, input, tabs, wait, screenshot, common), each
exporting `TOOLS`; `registry` collects them.
"""
