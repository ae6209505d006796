"""`sbench submit`: a run as a Ray job that carries its own environment, with its results brought home.

jobspec builds what is submitted (entrypoint, runtime_env; never a secret), jobmain is the entrypoint on
the cluster, pack brings a results directory into the log of a fetch job pinned to the run's node, and
jobs is the submitting side (connect, submit, follow, stop, fetch).
"""
