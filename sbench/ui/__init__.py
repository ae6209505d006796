"""Console output of a run: live progress while stages run, and the final summary table."""
