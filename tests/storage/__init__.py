"""Storage layer tests: the shared contract suite, URI parsing, drivers and multi-endpoint routing."""
