"""Looking at results after a run: the HTML report (`sbench report`), the xlsx export (`sbench analyze`) and
run comparison with regression gates (`sbench compare`), all read from results directories (sbench's and
sai3-bench's), never from a live run.

Data flows one way: files (tsvfile, rundir) -> stages and series -> figures -> pages / workbooks / verdicts.
"""
