"""How the book executes its chapters: bounded waits, per-cell timeouts and timings.

jupyter-book (myst-nb) runs each chapter through nbclient. Under ipykernel 7 / jupyter_client
8 / pyzmq 27, nbclient's wait for a cell's ``execute_reply`` on the shell channel can miss its
wake-up: the kernel has sent the reply (its header's timestamp says when), but the asyncio
poll on the socket sleeps on until the wait's timeout, when pyzmq's last zero-timeout poll
finds the message and the cell "completes" without an error. A build then stalls silently
for exactly the cell timeout. Measured (``benchmarks/execution_soak.py``): the reply of
Chapter 3's widget cell arrived 52 s after the kernel sent it. :class:`BoundedChannel` waits
in slices of at most :data:`SLICE` seconds up to the same deadline, so a missed wake-up costs
at most a slice. Rarer, the reply never reaches the client at all: in one cold build the
kernel finished the same cell (it ran the next request at once) while the bounded client
polled for minutes. Such a reply is given up :data:`LOST_REPLY` seconds after the kernel
reported itself idle on the cell, and the cell is taken as finished with what the kernel
published (its error, if any), reported in the build log as a lost reply.

:func:`execute` is what the book's Sphinx extension (``book/_ext``) runs in place of
myst-nb's executor: the same contract as ``jupyter_cache``'s ``single_nb_execution``, plus

* a per-cell timeout from the cell's recorded cold time (:func:`cell_timeout`), not 900 s;
* per-cell timings: wall time seen by the build, and the kernel's own busy-to-reply time;
  a cell whose wall time exceeds its kernel time by more than :data:`STALL` seconds is a
  stall and is reported in the build log with its chapter and cell, and so is a cell far
  above its recorded cold time scaled by this machine's speed;
* the timings appended to ``<build>/cell_times.json`` (read by ``benchmarks/book_time.py``).
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

from ..utils import atomic_write

#: The longest one wait on a kernel channel lasts before the socket is polled again (seconds).
SLICE = 1.0
#: Seconds after the kernel went idle on a cell with no execute reply come, after which the
#: reply counts as lost (see :class:`BoundedChannel`).
LOST_REPLY = 5.0
#: A cell whose wall time exceeds the kernel's own time by more than this is a stall (seconds).
STALL = 5.0
#: Cell timeout = max(MIN_TIMEOUT, TIMEOUT_FACTOR x the cell's recorded cold time x speed);
#: DEFAULT_TIMEOUT for a cell with no record.
MIN_TIMEOUT, TIMEOUT_FACTOR, DEFAULT_TIMEOUT = 120.0, 10.0, 300.0
#: A cell is reported as slow above SLOW_FACTOR x its cold time x speed + SLOW_MARGIN seconds.
SLOW_FACTOR, SLOW_MARGIN = 2.0, 5.0
#: A cell still running reports so every HEARTBEAT seconds: a build never waits silently.
HEARTBEAT = 60.0


class _Watch:
    """What a client's IOPub channel saw of its execute requests, for its shell channel."""

    def __init__(self):
        self.pending: str | None = None  # msg_id of the execute request awaiting its reply
        self.idle: dict[str, float] = {}  # msg_id -> when the kernel went idle on it
        self.errors: dict[str, dict] = {}  # msg_id -> the error it published


def _watch(session) -> _Watch:
    if not hasattr(session, "bierlib_watch"):
        session.bierlib_watch = _Watch()
    return session.bierlib_watch


class BoundedChannel(AsyncZMQSocketChannel):
    """A kernel channel whose ``get_msg`` waits in slices of at most :data:`SLICE` seconds.

    On the shell channel, an execute reply that never comes although the kernel went idle on
    its request :data:`LOST_REPLY` seconds ago (IOPub's status) is given as recovered: a reply
    made from what the kernel published (its error, if any), marked
    ``metadata["bierlib"] = "recovered"``, instead of waiting for the cell timeout.
    """

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = _watch(self.session)
        while True:
            left = SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                msg = await super().get_msg(timeout=min(SLICE, left))
            except Empty:
                lost = self._lost_reply(watch)
                if lost is not None:
                    return lost
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            parent = msg.get("parent_header", {}).get("msg_id")
            kind, content = msg["header"]["msg_type"], msg.get("content", {})
            if kind == "status" and content.get("execution_state") == "idle":
                watch.idle[parent] = time.monotonic()
            elif kind == "error":
                watch.errors[parent] = content
            elif kind == "execute_reply" and parent == watch.pending:
                watch.pending = None
            return msg

    def _lost_reply(self, watch: _Watch) -> dict[str, Any] | None:
        idle = watch.idle.get(watch.pending)
        if idle is None or time.monotonic() - idle < LOST_REPLY:
            return None
        error = watch.errors.get(watch.pending)
        content = {"status": "error", **error} if error else {"status": "ok"}
        msg = {"header": {"msg_id": f"recovered-{watch.pending}", "msg_type": "execute_reply",
                          "date": datetime.now(timezone.utc)},
               "parent_header": {"msg_id": watch.pending}, "metadata": {"bierlib": "recovered"},
               "content": content}
        watch.pending = None
        return msg


class BoundedKernelClient(AsyncKernelClient):
    shell_channel_class = Type(BoundedChannel)
    iopub_channel_class = Type(BoundedChannel)
    stdin_channel_class = Type(BoundedChannel)
    control_channel_class = Type(BoundedChannel)

    def execute(self, *args, **kwargs) -> str:
        msg_id = super().execute(*args, **kwargs)
        _watch(self.session).pending = msg_id
        return msg_id


class BoundedKernelManager(AsyncKernelManager):
    client_class = DottedObjectName(f"{__name__}.BoundedKernelClient")


def _stamp(value) -> float | None:
    """A kernel message timestamp (datetime or ISO string) -> POSIX seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def recorded_cells(chapter: str, record: dict | None) -> dict[str, float]:
    """cell id -> cold seconds of ``chapter`` in a chapter-times record (empty when unknown)."""
    rows = (record or {}).get("chapters", [])
    row = next((r for r in rows if r.get("docname") == f"book/{chapter}"), {})
    return dict(row.get("cells", {}))


def cell_timeout(cold_seconds: float | None, speed: float = 1.0) -> float:
    """A cell's timeout from its recorded cold time: a wide margin, never the whole build."""
    if cold_seconds is None:
        return DEFAULT_TIMEOUT
    return max(MIN_TIMEOUT, TIMEOUT_FACTOR * cold_seconds * speed)


class CellTimer:
    """nbclient hooks that time every code cell on one clock (the machine's wall clock):

    * ``wall``: from sending the cell to having its reply, as the build waited;
    * ``kernel``: the kernel's own busy-to-reply time (the messages' timestamps);
    * ``start_lag``: from sending the cell to the kernel going busy;
    * ``reply_lag``: from the kernel sending its reply to the build having it (and the
      cell's last output).
    """

    def __init__(self, chapter: str = "notebook", heartbeat=None):
        self.rows: list[dict[str, Any]] = []
        self.chapter, self.heartbeat = chapter, heartbeat
        self._sent: dict[str, float] = {}
        self._beat: asyncio.Task | None = None

    async def _beats(self, cell_index: int, first_line: str) -> None:
        waited = 0.0
        while True:
            await asyncio.sleep(HEARTBEAT)
            waited += HEARTBEAT
            self.heartbeat(f"{self.chapter}, cell {cell_index} ({first_line!r}) still running "
                           f"after {waited:.0f} s")

    def stop(self, **_) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None

    def on_cell_execute(self, cell, cell_index: int, **_) -> None:
        self.stop()
        self._sent[cell.get("id", str(cell_index))] = time.time()
        if self.heartbeat is not None:
            first_line = (cell.get("source") or "").split("\n", 1)[0][:60]
            self._beat = asyncio.ensure_future(self._beats(cell_index, first_line))

    def on_cell_executed(self, cell, cell_index: int, execute_reply=None, **_) -> None:
        self.stop()
        received = time.time()
        key = cell.get("id", str(cell_index))
        sent = self._sent.pop(key, received)
        timing = cell.get("metadata", {}).pop("execution", {})  # nbclient's record_timing
        busy = _stamp(timing.get("iopub.status.busy"))
        reply = _stamp(timing.get("shell.execute_reply"))
        known = busy is not None and reply is not None

        def seconds(x):
            return None if not known else round(x, 3)

        self.rows.append({"index": cell_index, "id": key, "wall": round(received - sent, 3),
                          "kernel": seconds(known and reply - busy),
                          "start_lag": seconds(known and busy - sent),
                          "reply_lag": seconds(known and received - reply),
                          "recovered": (execute_reply or {}).get("metadata", {}).get(
                              "bierlib") == "recovered",
                          "first_line": (cell.get("source") or "").split("\n", 1)[0][:60]})


def report(chapter: str, rows: list[dict], cold: dict[str, float], speed: float) -> list[str]:
    """Build-log lines for the cells that stalled or ran far above their recorded cold time."""
    lines = []
    for r in rows:
        where = f"{chapter}, cell {r['index']} ({r['first_line']!r})"
        if r["reply_lag"] is not None and r["reply_lag"] > STALL:
            lines.append(f"stall: {where} took {r['wall']:.1f} s; the kernel computed "
                         f"{r['kernel']:.1f} s and the build waited {r['reply_lag']:.1f} s "
                         "for a reply the kernel had already sent")
        if r.get("recovered"):
            lines.append(f"lost reply: {where}: the kernel finished the cell but its execute "
                         f"reply never came; went on {LOST_REPLY:.0f} s after the kernel's idle "
                         "status, with what it published")
        if r["start_lag"] is not None and r["start_lag"] > STALL:
            lines.append(f"stall: {where}: the kernel started the cell {r['start_lag']:.1f} s "
                         "after it was sent")
        expected = cold.get(r["id"])
        if expected is not None and r["wall"] > SLOW_FACTOR * expected * speed + SLOW_MARGIN:
            lines.append(f"slow cell: {where} took {r['wall']:.1f} s against {expected:.1f} s "
                         f"cold on the reference machine (x{speed:.2f} for this machine's speed)")
    return lines


def save_cell_times(path: Path, chapter: str, rows: list[dict], seconds: float,
                    **machine) -> None:
    """Add (or replace) ``chapter``'s timings in the JSON file ``path``, atomically, with
    ``machine`` (its speed and calibration) at the top level."""
    data = json.loads(path.read_text()) if path.is_file() else {"chapters": {}}
    data.update(machine)
    data["chapters"][chapter] = {"seconds": round(seconds, 3), "cells": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1) + "\n"), binary=False)


def execute(nb, cwd: str | None, timeout: float | None, allow_errors: bool,
            meta_override: bool = True, *, record: dict | None = None, speed: float = 1.0,
            times_file: Path | None = None, calibration_seconds: float | None = None,
            log=print, heartbeat=None, bounded: bool = True, rows_out: list | None = None,
            **kwargs):
    """Execute ``nb`` in place like ``jupyter_cache``'s ``single_nb_execution`` (same arguments
    and result), with bounded channel waits, per-cell timeouts and timings (module docstring).

    ``timeout`` is the timeout of cells with no record; ``record`` a chapter-times record
    (``bierlib/book/chapter_times.json``) and ``speed`` this machine's time per reference
    second (:func:`bierlib.book.notebook.speed_factor`, from ``calibration_seconds``, which
    ``times_file`` records beside the timings); ``log`` receives the report lines
    and ``heartbeat`` (if given) a line every :data:`HEARTBEAT` seconds of a running cell.
    ``bounded=False`` waits as plain nbclient does (for comparisons: benchmarks/execution_soak.py);
    ``rows_out``, a list, receives the cells' timings.
    """
    from jupyter_cache.executors.utils import single_nb_execution

    chapter = nb.metadata.get("bierlib", {}).get("chapter", "notebook")
    cold = recorded_cells(chapter, record)
    default = timeout if timeout and timeout > 0 else DEFAULT_TIMEOUT
    timer = CellTimer(chapter, heartbeat)
    result = single_nb_execution(
        nb, cwd=cwd, timeout=timeout, allow_errors=allow_errors, meta_override=meta_override,
        record_timing=True,
        kernel_manager_class=BoundedKernelManager if bounded else AsyncKernelManager,
        timeout_func=lambda cell: (cell_timeout(cold[cell["id"]], speed) if cell.get("id") in cold
                                   else default),
        on_cell_execute=timer.on_cell_execute, on_cell_executed=timer.on_cell_executed,
        on_notebook_complete=timer.stop, on_notebook_error=timer.stop, **kwargs)
    if rows_out is not None:
        rows_out.extend(timer.rows)
    for line in report(chapter, timer.rows, cold, speed):
        log(line)
    if times_file is not None:
        save_cell_times(times_file, chapter, timer.rows, result.time, speed=speed,
                        calibration_seconds=calibration_seconds)
    return result
