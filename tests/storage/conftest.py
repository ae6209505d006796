"""Contract-suite plumbing: one parametrised fixture runs each contract test against every backend case.

Each case id maps to a fixture named `backend_<id with - as _>` that yields a Backend rooted at a fresh, empty
prefix and removes it afterwards. The fixtures live next to the driver they test and are star-imported here
when their module exists: `fixtures_local` (file, direct), `fixtures_s3` (s3-sdk, s3-native) and
`fixtures_cloud` (azure-*, gcs-*). A case whose fixture is not defined yet is skipped, never silently passed.

Optional per-case fixtures, same naming:
- `badauth_<case>`: a Backend on a reachable server with wrong credentials (calls must fail with AUTH);
- `stopped_<case>`: a Backend pointed at an endpoint where no server listens (calls must fail with NETWORK);
- `seeder_<case>`: a `Seeder` for backends that cannot PUT on the test server (gcs-native on
  fake-gcs-server); contract tests create their objects through it and skip the PUT-specific checks with its
  reason.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.storage.fixtures_local import Seeder

# Star-imports register the fixtures with pytest. A module that exists but fails to import must fail loudly,
# so existence is checked first instead of wrapping the import in try/except.
if importlib.util.find_spec("tests.storage.fixtures_local") is not None:
    from tests.storage.fixtures_local import *  # noqa: F403
if importlib.util.find_spec("tests.storage.fixtures_s3") is not None:
    from tests.storage.fixtures_s3 import *  # noqa: F403
if importlib.util.find_spec("tests.storage.fixtures_cloud") is not None:
    from tests.storage.fixtures_cloud import *  # noqa: F403

CASES = ["file", "direct", "s3-sdk", "s3-native", "azure-sdk", "azure-native", "gcs-sdk", "gcs-native"]
LOCAL_CASES = frozenset({"file", "direct"})
NOT_BUILT = "driver not built yet"


def _case_fixture(request: pytest.FixtureRequest, kind: str, case: str, missing_reason: str) -> object:
    name = f"{kind}_{case.replace('-', '_')}"
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError as exc:
        # The case fixture exists but one of *its* dependencies is missing: a real bug, not a skip.
        if exc.argname != name:
            raise
        pytest.skip(f"{case}: {missing_reason} (no fixture {name})")


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> str:
    """The backend case id of the running contract test (for skips and messages)."""
    return request.param


@pytest.fixture
def backend(request: pytest.FixtureRequest, case: str):
    """A Backend of the current case rooted at a fresh, empty prefix."""
    return _case_fixture(request, "backend", case, NOT_BUILT)


@pytest.fixture
def seeder(request: pytest.FixtureRequest, case: str, backend) -> Seeder:
    """How contract tests create objects: the backend's own put, unless the case has a `seeder_<case>`."""
    name = f"seeder_{case.replace('-', '_')}"
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError as exc:
        if exc.argname != name:
            raise
        return Seeder(put=backend.put)


@pytest.fixture
def badauth_backend(request: pytest.FixtureRequest, case: str):
    """A Backend of the current case with wrong credentials."""
    if case in LOCAL_CASES:
        pytest.skip(f"{case}: a local file system has no credentials to get wrong")
    return _case_fixture(request, "badauth", case, NOT_BUILT)


@pytest.fixture
def stopped_backend(request: pytest.FixtureRequest, case: str):
    """A Backend of the current case whose endpoint has no server behind it."""
    if case in LOCAL_CASES:
        pytest.skip(f"{case}: a local file system has no server to stop")
    return _case_fixture(request, "stopped", case, NOT_BUILT)
