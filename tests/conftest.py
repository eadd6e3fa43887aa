import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Caches (precision "auto"'s probe result, run/precision.py) go to a folder of this test session's, shared by
# its xdist workers and the processes they start: never the user's ~/.cache, measured once per session.
os.environ["XDG_CACHE_HOME"] = os.path.join(
    tempfile.gettempdir(), f"benchbench-tests-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python, NumPy and backend random state."""
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback for this test session, with password authentication."""
    from support.postgres import PostgresServer

    with PostgresServer() as server:
        yield server.url


def pytest_xdist_make_scheduler(config, log):
    """`--dist load` (make test) hands tests out one at a time, except that all tests of a file with a
    module-scoped fixture go to one worker, which builds the fixture once. (pytest-xdist's own `loadgroup`
    does not group under pytest 9: it renames items through an attribute pytest no longer reads.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path not in grouped:
                grouped[path] = 'scope="module"' in (config.rootpath / path).read_text()
            return path if grouped[path] else nodeid

    grouped: dict[str, bool] = {}
    return Scheduler(config, log)
