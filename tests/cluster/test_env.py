"""The forwarded environment in transit (issue 10 #2): printed with names only, set in a task's worker only
while the task runs (Ray reuses the process for later tasks, maybe of another run), and never through a
runtime_env."""

from __future__ import annotations

import os
import pickle

import pytest

from sbench.cluster.env import ForwardedEnv
from sbench.cluster.env import capture as env_capture

SECRET = "fwd-env-test-value-7c1d"


def test_forwarded_env_prints_names_only_and_pickles_with_values() -> None:
    env = env_capture({"AWS_SECRET_ACCESS_KEY": SECRET, "HOME": "/root", "SBENCH_AGENT_ID": "n1"})
    assert env.names == ["AWS_SECRET_ACCESS_KEY"]
    for text in (repr(env), str(env), f"{env}", repr({"env": env}), repr(RuntimeError(env))):
        assert SECRET not in text and "AWS_SECRET_ACCESS_KEY" in text
    clone = pickle.loads(pickle.dumps(env))
    with clone.applied():
        assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET


def test_applied_restores_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # the node's own value: back after the block
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    env = ForwardedEnv({"AWS_REGION": "us-east-1", "GOOGLE_OAUTH_ACCESS_TOKEN": SECRET})
    with pytest.raises(RuntimeError), env.applied():
        assert os.environ["AWS_REGION"] == "us-east-1" and os.environ["GOOGLE_OAUTH_ACCESS_TOKEN"] == SECRET
        raise RuntimeError("the task failed")
    assert os.environ["AWS_REGION"] == "eu-west-1"
    assert "GOOGLE_OAUTH_ACCESS_TOKEN" not in os.environ


def worker_view(name: str) -> tuple[int, str | None]:
    """A task body: this worker's pid and what it sees of `name`."""
    return os.getpid(), os.environ.get(name)


@pytest.mark.ray
def test_a_task_sees_its_runs_variables_and_a_later_task_on_the_same_worker_does_not(ray_session) -> None:
    import ray

    from sbench.cluster.rayjobs import _remote

    task = _remote(worker_view).options(num_cpus=0.25, max_retries=0)
    name = "GOOGLE_OAUTH_ACCESS_TOKEN"
    pids: dict[int, list[str | None]] = {}
    for env in (ForwardedEnv({name: SECRET}), ForwardedEnv({})) * 4:
        pid, seen = ray.get(task.remote(env, None, name))  # None: no op-log spec
        assert seen == (SECRET if len(env) else None)
        pids.setdefault(pid, []).append(seen)
    assert any(len(set(seen)) == 2 for seen in pids.values()), "no worker ran both kinds: no reuse seen"
