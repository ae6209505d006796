"""sbench: a distributed storage I/O benchmark on Ray, compatible with sai3-bench workloads."""

__version__ = "0.1.0"
