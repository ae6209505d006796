"""Results directory and every result file: TSVs (sai3-compatible columns), perf log, summary.json,
metadata.json, STATUS.txt and the console transcript."""
