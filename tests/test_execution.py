"""How the book executes chapters (:mod:`bierlib.book.execution`): bounded waits, per-cell
timeouts from the recorded cold times, timings and the build log's stall report."""
import asyncio
import json
import time
from queue import Empty

import nbformat
import pytest
from jupyter_client.channels import AsyncZMQSocketChannel

from bierlib.book import execution

REPLY = {"header": {"msg_type": "execute_reply"}, "parent_header": {"msg_id": "m0"},
         "content": {"status": "ok"}}


def test_a_channel_wait_is_cut_into_short_polls_up_to_the_same_deadline(monkeypatch):
    """A missed wake-up inside one poll costs at most SLICE seconds: the wait polls again."""
    asked, reply_on = [], [3]

    async def parent_get_msg(self, timeout=None):
        asked.append(timeout)
        await asyncio.sleep(timeout)  # a poll whose wake-up never comes: it runs to its timeout
        if len(asked) in reply_on:
            return REPLY  # found by the next poll
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", parent_get_msg)
    monkeypatch.setattr(execution, "SLICE", 0.05)
    channel = execution.BoundedChannel.__new__(execution.BoundedChannel)
    channel.session = type("Session", (), {})()
    assert asyncio.run(channel.get_msg(timeout=10)) == REPLY
    assert asked == [0.05, 0.05, 0.05]  # not one wait of 10 s

    asked.clear()
    reply_on.clear()  # no reply comes at all
    start = time.monotonic()
    with pytest.raises(Empty):  # the deadline still holds
        asyncio.run(channel.get_msg(timeout=0.12))
    assert 0.1 <= time.monotonic() - start < 1.0
    assert len(asked) == 3 and all(t <= 0.05 for t in asked)


def test_cell_timeouts_come_from_cold_times_with_a_wide_margin():
    assert execution.cell_timeout(None) == execution.DEFAULT_TIMEOUT
    assert execution.cell_timeout(1.0) == execution.MIN_TIMEOUT
    assert execution.cell_timeout(30.0) == 300.0
    assert execution.cell_timeout(30.0, speed=2.0) == 600.0
    record = {"chapters": [{"docname": "book/03_bier", "cells": {"a1": 6.6}}]}
    assert execution.recorded_cells("03_bier", record) == {"a1": 6.6}
    assert execution.recorded_cells("01_contrastive", record) == {}


def test_the_report_names_chapter_and_cell_of_a_stall_or_a_slow_cell():
    rows = [{"index": 26, "id": "a", "wall": 120.4, "kernel": 6.6, "start_lag": 0.01,
             "reply_lag": 113.8, "first_line": "bier_emb = runs"},
            {"index": 27, "id": "b", "wall": 30.0, "kernel": 29.9, "start_lag": 0.01,
             "reply_lag": 0.05, "first_line": "fig, axes"},
            {"index": 28, "id": "c", "wall": 5.0, "kernel": 4.9, "start_lag": 0.01,
             "reply_lag": 0.05, "first_line": "x = 1"}]
    lines = execution.report("03_bier", rows, {"a": 6.0, "b": 5.0, "c": 4.0}, speed=1.0)
    assert len(lines) == 3
    assert lines[0].startswith("stall: 03_bier, cell 26") and "113.8 s" in lines[0]
    assert lines[1].startswith("slow cell: 03_bier, cell 26")
    assert lines[2].startswith("slow cell: 03_bier, cell 27")
    assert execution.report("03_bier", rows[1:], {"b": 5.0}, speed=3.0) == []  # a slow machine


def test_a_notebook_executes_with_timings_and_its_cells_timeouts(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(metadata={"bierlib": {"chapter": "tiny"}})
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(0.3)\nprint('done')"),
                nbformat.v4.new_code_cell("1 + 1")]
    record = {"chapters": [{"docname": "book/tiny", "cells": {nb.cells[0].id: 0.3}}]}
    rows, lines = [], []
    times = tmp_path / "cell_times.json"
    result = execution.execute(nb, cwd=str(tmp_path), timeout=60, allow_errors=False,
                               record=record, times_file=times, log=lines.append, rows_out=rows)
    assert result.err is None
    assert nb.cells[0].outputs[0]["text"] == "done\n"
    assert "execution" not in nb.cells[0].metadata  # the timing metadata is not kept
    assert [r["index"] for r in rows] == [0, 1]
    assert 0.3 <= rows[0]["kernel"] <= rows[0]["wall"] and rows[0]["reply_lag"] < 1.0
    assert lines == []
    assert json.loads(times.read_text())["chapters"]["tiny"]["cells"] == rows

    # a recorded cell gets its own timeout, MIN_TIMEOUT at least: exceeding it fails the cell
    monkeypatch.setattr(execution, "MIN_TIMEOUT", 1.0)
    nb.cells[0].source = "import time\ntime.sleep(5)"
    result = execution.execute(nb, cwd=str(tmp_path), timeout=60, allow_errors=False,
                               record=record)
    assert result.err is not None and "timed out" in str(result.err)


def test_a_reply_lost_after_the_kernel_went_idle_is_recovered_with_its_error(monkeypatch):
    """The shell wait gives up LOST_REPLY seconds after IOPub said the kernel is idle on the
    request, with a reply made from what the kernel published; never before."""
    async def parent_get_msg(self, timeout=None):
        await asyncio.sleep(timeout)
        raise Empty  # the reply never comes

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", parent_get_msg)
    monkeypatch.setattr(execution, "SLICE", 0.02)
    monkeypatch.setattr(execution, "LOST_REPLY", 0.1)
    session = type("Session", (), {})()
    shell = execution.BoundedChannel.__new__(execution.BoundedChannel)
    shell.session = session
    watch = execution._watch(session)
    watch.pending = "m1"
    with pytest.raises(Empty):  # the kernel has not gone idle on m1: wait to the deadline
        asyncio.run(shell.get_msg(timeout=0.3))
    watch.idle["m1"] = time.monotonic()
    watch.errors["m1"] = {"ename": "ValueError", "evalue": "bad", "traceback": []}
    start = time.monotonic()
    reply = asyncio.run(shell.get_msg(timeout=30))
    assert 0.08 <= time.monotonic() - start < 1.0
    assert reply["parent_header"]["msg_id"] == "m1" and reply["metadata"]["bierlib"] == "recovered"
    assert reply["content"] == {"status": "error", "ename": "ValueError", "evalue": "bad",
                                "traceback": []}
    assert watch.pending is None
    row = {"index": 3, "id": "x", "wall": 8.0, "kernel": 2.0, "start_lag": 0.0,
           "reply_lag": 6.0, "recovered": True, "first_line": "view_switcher(...)"}
    assert any(line.startswith("lost reply: 03_bier, cell 3")
               for line in execution.report("03_bier", [row], {}, 1.0))
