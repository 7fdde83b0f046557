"""The command-line layer: shared option groups, one progress bar, one output writer."""
