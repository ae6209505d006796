"""The run plan: what a validated config means for a run, worked out once and before anything runs.

Pure functions of the config (and the CLI flags), below the engine and the fleets: the ordered stages with
their durations and barriers (plan.stages), the object index spaces of prepare and cleanup with their pools,
names and tree layout (plan.objectspaces), and who the agents are and what share each one runs
(plan.agents). The engine and both fleets read the plan; none of them works these out again.
"""
