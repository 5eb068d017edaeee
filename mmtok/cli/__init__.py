"""The `mmtok` command line: thin wrappers over the Python API, one module per group."""
