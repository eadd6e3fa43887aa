"""Where studies and searches keep their state: Optuna's RDB storage, SQLite on one machine, PostgreSQL for many.

Storage URLs are SQLAlchemy URLs (`sqlite:///results/demo/optuna.db`, `postgresql://user:pass@host/db`). They may
hold a password, so they are only ever shown through `display_url`, and worker processes get them through the
environment, never on a command line that `ps` would show.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
import warnings
from pathlib import Path

STORAGE_ENV = "BENCHBENCH_STORAGE"
SCHEMES = ("sqlite", "postgresql")


class StorageError(RuntimeError):
    """The storage cannot be reached or opened: a failure of the world, exit status 1."""


def dashboard_hint(url: str) -> str:
    """How to browse a storage: the optuna-dashboard command, and how to install it where it is missing."""
    import shutil

    hint = f"optuna-dashboard {display_url(url)}"
    return hint if shutil.which("optuna-dashboard") else f"{hint} (after pip install -e '.[dashboard]')"


def display_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show only its scheme-like prefix
        return url.split(":", 1)[0] + ":..."


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


CONNECT_TIMEOUT = 10  # seconds for a PostgreSQL connection (libpq's connect_timeout: connect and authenticate)


def _check_url(url: str) -> None:
    from sqlalchemy.engine import make_url

    try:
        scheme = make_url(url).get_backend_name()
    except Exception:
        raise ValueError(f"storage {display_url(url)!r} is not a database URL; use e.g. sqlite:///study.db or "
                         "postgresql://user:password@host/database") from None
    if scheme not in SCHEMES:
        raise ValueError(f"storage scheme {scheme!r} is not supported; use sqlite:///FILE or postgresql://...")


def open_storage(url: str, *, heartbeat: float | None = None, max_retries: int | None = None):
    """An Optuna RDBStorage; with `heartbeat` (seconds), trials of dead workers go stale after 3 missed beats
    and are re-queued (at most `max_retries` times) by Optuna's RetryHeartbeatStaleTrialCallback."""
    import optuna
    import sqlalchemy.exc

    _check_url(url)
    kwargs = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"storage {display_url(url)}: cannot create the folder {Path(path).parent}: "
                                   f"{error.strerror or error}") from None
        # Several local workers share the file: wait for a lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    else:
        # A cluster's workers must not hold connections while they train (a hundred idle workers would exhaust
        # the server's max_connections): no pool, each storage call connects and disconnects. A server that
        # accepts connections but never answers must not hang a worker: give up after a while.
        from sqlalchemy.pool import NullPool

        engine_kwargs = {"poolclass": NullPool, "pool_pre_ping": True,
                         "connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    last_error: Exception | None = None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; we rely on them
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if heartbeat:
                    kwargs = {"heartbeat_interval": max(1, round(heartbeat)),
                              "grace_period": max(3, round(3 * heartbeat)),
                              "heartbeat_stale_trial_callback":
                                  optuna.storages.RetryHeartbeatStaleTrialCallback(max_retries)}
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            if storage.engine.name == "sqlite":
                _lock_on_begin(storage.engine)
            return storage
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
            # Workers starting together on a fresh database race to create its tables; one retry settles it.
            last_error = error
            if any(reason in str(error) for reason in ("could not connect", "Connection refused", "timeout expired",
                                                        "too many connections for role")):
                break
            time.sleep(0.5 + random.random() * attempt)
        except ModuleNotFoundError as error:
            raise StorageError(f"storage {display_url(url)}: the database driver is not installed "
                               f"({error.name})") from None
    raise StorageError(f"cannot open storage {display_url(url)}: {_reason(last_error, url)}")


@contextlib.contextmanager
def storage_errors(url: str):
    """Turns Optuna's storage failures inside the body into a StorageError naming the (masked) URL."""
    import optuna

    try:
        yield
    except optuna.exceptions.StorageInternalError as error:
        raise StorageError(f"storage {display_url(url)}: {error.__cause__ or error}") from None


def _lock_on_begin(engine) -> None:
    """Makes SQLite transactions take the write lock when they begin.

    Python's sqlite3 driver starts a transaction only at the first write, so Optuna's read-check-write of a
    trial's state (a SELECT ... FOR UPDATE on PostgreSQL) is not atomic between processes on SQLite: two
    workers could both move one WAITING trial to RUNNING. BEGIN IMMEDIATE (SQLAlchemy's documented recipe for
    pysqlite) serialises them; the connect timeout above makes the others wait their turn."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let SQLAlchemy, not the driver, emit BEGIN

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while Optuna created its tables predate the listeners


def _reason(error: Exception | None, url: str) -> str:
    from sqlalchemy.engine import make_url

    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = text[0] if text else type(error).__name__
    if "too many clients" in reason or "too many connections" in reason:
        reason += " (the server is out of connections: fewer workers, or a higher max_connections)"
    password = make_url(url).password
    return reason.replace(password, "***") if password else reason


@contextlib.contextmanager
def exclusive(storage, name: str):
    """A storage-wide mutex named `name`, for read-then-write sequences Optuna does not make atomic (enqueueing
    the missing cells of a study must not race another worker doing the same). PostgreSQL: a session advisory
    lock, released by the server if the holder dies. SQLite (one machine): an flock on a file beside the
    database, released by the kernel if the holder dies."""
    engine = storage.engine
    if engine.name == "postgresql":
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    else:
        import fcntl

        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def heartbeat(storage, trial_id: int):
    """Records the trial's heartbeat in a background thread while the body runs (the storage's interval).

    Optuna's own heartbeat thread lives inside `Study.optimize`; a study's cells are claimed, not sampled, so the
    worker keeps the beat itself through the storage's public `record_heartbeat`."""
    interval = storage.get_heartbeat_interval()
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # a missed beat is retried; only a long outage lets the trial go stale, by design
                pass
            stop.wait(interval)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def heartbeat_ages(storage, trial_ids: list[int]) -> dict[int, float]:
    """Seconds since each trial's last heartbeat, by the database's clock (as Optuna judges staleness); trials
    that never beat are absent. One query, however many trials."""
    import sqlalchemy
    from optuna.storages._rdb import models  # the table Optuna's record_heartbeat writes

    table = models.TrialHeartbeatModel.__table__
    with storage.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        if isinstance(now, str):  # SQLite returns text
            from datetime import datetime

            now = datetime.fromisoformat(now)
        now = now.replace(tzinfo=None)  # as Optuna does: PostgreSQL's now() is zone-aware, the column is not
        rows = connection.execute(sqlalchemy.select(table.c.trial_id, table.c.heartbeat)
                                  .where(table.c.trial_id.in_(trial_ids))).all()
    return {trial_id: (now - beat).total_seconds() for trial_id, beat in rows}
