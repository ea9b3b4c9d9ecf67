"""The SQLite writer of a process: writes from many threads queue in-process, share
transactions, and each caller sees exactly its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from smsgate.store.db import GroupRolledBack, create_engine, writing

ROWS = sa.table("rows", sa.column("n", sa.Integer))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE rows (n INTEGER NOT NULL UNIQUE)")
    yield eng
    eng.dispose()


def stored(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        return {n for (n,) in conn.exec_driver_sql("SELECT n FROM rows")}


def insert(engine: sa.Engine, n: int, *, hold: float = 0.0) -> None:
    with writing(engine) as conn:
        conn.execute(ROWS.insert().values(n=n))
        time.sleep(hold)  # keeps the transaction open while others queue behind it


Outcomes = dict[int, BaseException | None]


def recording(engine: sa.Engine, outcomes: Outcomes) -> Callable[[int, float], None]:
    """``write(n, hold)``: insert n, and note in ``outcomes`` how it ended."""

    def write(n: int, hold: float) -> None:
        try:
            insert(engine, n, hold=hold)
            outcomes[n] = None
        except BaseException as exc:
            outcomes[n] = exc

    return write


def run_threads(*targets: threading.Thread) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(10)
        assert not t.is_alive()


def test_concurrent_writers_share_commits_and_lose_nothing(engine: sa.Engine) -> None:
    commits: list[int] = []
    sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
    threads = [
        threading.Thread(target=insert, args=(engine, n), kwargs={"hold": 0.002})
        for n in range(200)
    ]
    run_threads(*threads)
    assert stored(engine) == set(range(200))
    assert len(commits) < 100, f"{len(commits)} commits for 200 writes: nothing was grouped"


def test_a_failing_block_undoes_only_its_own_work(engine: sa.Engine) -> None:
    outcomes: dict[int, BaseException | None] = {}

    def write(n: int, hold: float) -> None:
        try:
            with writing(engine) as conn:
                conn.execute(ROWS.insert().values(n=n))
                time.sleep(hold)
                if n == 2:
                    raise ValueError("the caller's own failure")
            outcomes[n] = None
        except BaseException as exc:
            outcomes[n] = exc

    first = threading.Thread(target=write, args=(1, 0.3))
    first.start()
    time.sleep(0.05)  # the others queue behind the first, in the same group
    run_threads(*(threading.Thread(target=write, args=(n, 0.0)) for n in (2, 3, 4)))
    first.join(10)
    assert stored(engine) == {1, 3, 4}
    assert isinstance(outcomes[2], ValueError)
    assert [outcomes[n] for n in (1, 3, 4)] == [None, None, None]


def test_a_database_error_in_one_block_spares_the_group(engine: sa.Engine) -> None:
    insert(engine, 7)
    errors: list[BaseException] = []

    def duplicate() -> None:
        try:
            insert(engine, 7)
        except sa.exc.IntegrityError as exc:
            errors.append(exc)

    first = threading.Thread(target=insert, args=(engine, 8), kwargs={"hold": 0.3})
    first.start()
    time.sleep(0.05)
    run_threads(
        threading.Thread(target=duplicate), threading.Thread(target=insert, args=(engine, 9))
    )
    first.join(10)
    assert len(errors) == 1
    assert stored(engine) == {7, 8, 9}


def test_a_failed_commit_is_reported_to_every_member(engine: sa.Engine) -> None:
    def refuse(_conn: sa.Connection) -> None:
        raise RuntimeError("disk full")

    outcomes: dict[int, BaseException | None] = {}
    write = recording(engine, outcomes)

    sa.event.listen(engine, "commit", refuse)
    first = threading.Thread(target=write, args=(1, 0.3))
    first.start()
    time.sleep(0.05)
    run_threads(*(threading.Thread(target=write, args=(n, 0.0)) for n in (2, 3)))
    first.join(10)
    sa.event.remove(engine, "commit", refuse)
    assert stored(engine) == set()
    assert all(isinstance(outcomes[n], RuntimeError) for n in (1, 2, 3)), outcomes
    insert(engine, 4)  # the writer is usable again
    assert stored(engine) == {4}


def test_when_the_first_block_fails_the_others_are_told(engine: sa.Engine) -> None:
    outcomes: dict[int, BaseException | None] = {}

    def first() -> None:
        try:
            with writing(engine) as conn:
                conn.execute(ROWS.insert().values(n=1))
                time.sleep(0.3)
                raise ValueError("first fails")
        except BaseException as exc:
            outcomes[1] = exc

    def other(n: int) -> None:
        try:
            insert(engine, n)
            outcomes[n] = None
        except BaseException as exc:
            outcomes[n] = exc

    lead = threading.Thread(target=first)
    lead.start()
    time.sleep(0.05)
    run_threads(threading.Thread(target=other, args=(2,)))
    lead.join(10)
    assert isinstance(outcomes[1], ValueError)
    # the second caller started after the first failed, in a transaction of its own
    assert outcomes[2] is None or isinstance(outcomes[2], GroupRolledBack)
    assert stored(engine) == ({2} if outcomes[2] is None else set())


def test_writing_inside_writing_nests(engine: sa.Engine) -> None:
    with writing(engine) as outer:
        outer.execute(ROWS.insert().values(n=1))
        with writing(engine) as inner:
            assert inner is outer
            inner.execute(ROWS.insert().values(n=2))
        with pytest.raises(sa.exc.IntegrityError), writing(engine) as inner:
            inner.execute(ROWS.insert().values(n=1))
    assert stored(engine) == {1, 2}


def test_another_process_style_writer_still_waits_for_the_lock(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """A second engine (as the CLI would open) meets this one at SQLite's lock."""
    other = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        held = threading.Thread(target=insert, args=(engine, 1), kwargs={"hold": 0.3})
        held.start()
        time.sleep(0.05)
        with other.begin() as conn:  # BEGIN IMMEDIATE: waits, then writes
            conn.execute(ROWS.insert().values(n=2))
        held.join(10)
    finally:
        other.dispose()
    assert stored(engine) == {1, 2}


def test_a_transaction_that_cannot_start_leaves_the_writer_usable(engine: sa.Engine) -> None:
    """No connection or no lock for one caller must not wedge every later write."""
    failures = [RuntimeError("database is locked")]

    def refuse_once(_conn: sa.Connection) -> None:
        if failures:
            raise failures.pop()

    sa.event.listen(engine, "begin", refuse_once)
    with pytest.raises(RuntimeError, match="locked"):
        insert(engine, 1)
    done = threading.Thread(target=insert, args=(engine, 2))
    run_threads(done)
    sa.event.remove(engine, "begin", refuse_once)
    assert stored(engine) == {2}


def test_a_savepoint_that_cannot_be_released_fails_its_group(
    engine: sa.Engine,
) -> None:
    """A write whose savepoint cannot be released is not kept, nor is the group it was in
    (the transaction's state is in doubt): each caller is told, and later writes go on."""
    outcomes: dict[int, BaseException | None] = {}
    write = recording(engine, outcomes)

    def refuse_release(_conn: sa.Connection, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("RELEASE"):
            raise RuntimeError("disk I/O error")

    first = threading.Thread(target=write, args=(1, 0.3))
    first.start()
    time.sleep(0.05)
    sa.event.listen(engine, "before_cursor_execute", refuse_release)
    try:
        run_threads(threading.Thread(target=write, args=(2, 0.0)))
    finally:
        first.join(10)
        sa.event.remove(engine, "before_cursor_execute", refuse_release)
    assert isinstance(outcomes[2], RuntimeError)
    assert isinstance(outcomes[1], GroupRolledBack)
    insert(engine, 3)
    assert stored(engine) == {3}
