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
