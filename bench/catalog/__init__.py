"""User suites: found in a folder, imported in a child process first, then loaded and checked."""
