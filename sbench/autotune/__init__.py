"""`sbench autotune`: a sweep of object size x threads x ranged-GET settings (sai3-bench's `autotune:` block).

sweep.py expands the block into points and each point into an ordinary sbench config; runner.py runs every
point and trial through the one run driver (so a `distributed` block spreads each point over every agent at
once, exactly as `sbench run` would) and reads the figures back from the point's summary.json; output.py
writes the TSVs, picks the best setting per size and draws the plot.
"""
