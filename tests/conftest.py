import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under `--dist loadgroup` (make test), the tests of a module that share one of its module-scoped fixtures
    run on the same worker, so the fixture is built once; every other test is handed out on its own."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        shared = fixtures and any(d.scope == "module" for defs in fixtures.name2fixturedefs.values() for d in defs)
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
