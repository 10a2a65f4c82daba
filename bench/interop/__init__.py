"""Results in and out of other tools: CSV, Markdown, pytest-benchmark JSON, and a pytest plugin."""
