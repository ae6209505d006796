"""One run of `sbench run`: the driver (run.driver), its fleet interface (run.fleet) with the in-process
fleet (run.inprocess; the Ray fleet is cluster.rayfleet), the stage records they exchange
(run.stagerecord), the barrier and stage-monitor rules, the stage verdict and the results report."""
