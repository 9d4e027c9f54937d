"""R112: log lines are gathered (observability.logs.BufferedStream), not written with a write and a
flush each: they go out whole lines at a time in writes of at most PIPE_BUF bytes, every `seconds` on
a thread of their own, at once for a WARNING or worse, and when logging shuts down or the process
forks. Read here from a real pipe, as `bureau serve`'s stderr is read."""

import fcntl
import io
import json
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from observability.logs import BufferedStream, JsonLines, RequestIdFilter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipe() -> Iterator[tuple[int, io.TextIOWrapper]]:
    """The read end, and the write end as a text stream (as sys.stderr is one)."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for every test's lines: no writer blocks
    os.set_blocking(read, False)
    stream = open(write, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        yield read, stream
    finally:
        stream.close()
        os.close(read)


def drained(fd: int, wait: float = 0.0) -> bytes:
    """What the pipe holds now, or within `wait` seconds of its first byte."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + wait
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return b"".join(chunks)
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        deadline = time.monotonic()  # take what follows at once, then stop


def logger_to(handler: logging.Handler, name: str) -> logging.Logger:
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger(name)
    log.handlers, log.propagate, log.level = [handler], False, logging.INFO
    return log


def lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_lines_wait_in_the_buffer_and_go_out_on_the_timer(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=0.2)
    log = logger_to(handler, "test.buffer.timer")
    try:
        for n in range(3):
            log.info("line %d", n, extra={"n": n})
        assert drained(read) == b"", "a line was written at once: each would be a system call"
        # Nothing more is logged: the thread sends them all the same.
        data = drained(read, wait=5)
        assert [line["message"] for line in lines(data)] == ["line 0", "line 1", "line 2"]
        assert [line["n"] for line in lines(data)] == [0, 1, 2]
    finally:
        handler.close()


def test_a_warning_goes_out_at_once_after_what_came_before(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.warning")
    try:
        log.info("before")
        log.warning("trouble")
        assert [(line["level"], line["message"]) for line in lines(drained(read))] == [
            ("INFO", "before"), ("WARNING", "trouble")]
    finally:
        handler.close()


def test_closing_sends_what_is_left(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.close")
    log.info("last words")
    assert drained(read) == b""
    handler.close()  # what logging.shutdown does at exit
    assert [line["message"] for line in lines(drained(read))] == ["last words"]


def test_lines_go_out_in_whole_lines_no_longer_than_a_pipe_keeps_whole(pipe: tuple[int, io.TextIOWrapper],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of at most PIPE_BUF bytes to a pipe are never split, so the workers sharing stderr never
    splice their lines into each other's; a longer line goes alone, as every line did before."""
    read, stream = pipe
    writes: list[bytes] = []
    write = os.write

    def recorded(fd: int, data: Any) -> int:
        writes.append(bytes(data))
        return write(fd, data)

    monkeypatch.setattr(os, "write", recorded)
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.chunks")
    try:
        for n in range(2000):  # about 150 kB of lines, without waiting for the timer
            log.info("line %d %s", n, "x" * 40)
        log.info("long %s", "y" * 10_000)
        written = drained(read, wait=1)
    finally:
        handler.close()
    everything = written + drained(read)
    assert [line["message"] for line in lines(everything)] == [
        *(f"line {n} {'x' * 40}" for n in range(2000)), f"long {'y' * 10_000}"]
    assert len(writes) < 100, "about a line a write: a system call each"
    assert all(chunk.endswith(b"\n") for chunk in writes)
    long_line = [chunk for chunk in writes if b'"message":"long ' in chunk]
    assert len(long_line) == 1 and long_line[0].count(b"\n") == 1  # alone
    assert all(len(chunk) <= select.PIPE_BUF for chunk in writes if chunk is not long_line[0])


def test_workers_sharing_a_pipe_never_splice_their_lines() -> None:
    """Two processes log into one pipe that a slow reader drains: every line arrives whole."""
    script = (
        "import logging, sys\n"
        "from observability.logs import BufferedStream, JsonLines\n"
        "handler = BufferedStream(sys.stdout, seconds=0.05); handler.setFormatter(JsonLines())\n"
        "log = logging.getLogger('worker'); log.propagate = False; log.setLevel(logging.INFO)\n"
        "log.addHandler(handler)\n"
        "for n in range(8000):\n"
        "    log.info('%s %d %s', sys.argv[1], n, 'z' * 200)\n")
    read, write = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", script, name], cwd=ROOT, stdout=write, env=env)
               for name in ("one", "two")]
    os.close(write)
    chunks = []
    with open(read, "rb", buffering=0) as out:
        while chunk := out.read(1000):  # slowly, so that the pipe is full and writers wait
            chunks.append(chunk)
            time.sleep(0.0002)
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    messages = [json.loads(line)["message"] for line in b"".join(chunks).splitlines()]
    for name in ("one", "two"):
        assert [m for m in messages if m.startswith(name)] == [f"{name} {n} {'z' * 200}" for n in range(8000)]


def test_no_seconds_writes_each_line_at_once(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=0)
    log = logger_to(handler, "test.buffer.none")
    try:
        log.info("now")
        assert [line["message"] for line in lines(drained(read))] == ["now"]
    finally:
        handler.close()


def test_a_stream_without_a_descriptor_is_written_line_by_line() -> None:
    stream = io.StringIO()
    handler = BufferedStream(stream, seconds=0.2)
    log = logger_to(handler, "test.buffer.nofd")
    try:
        log.info("captured")
        assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["captured"]
    finally:
        handler.close()


def test_the_buffered_line_is_the_formatter_s(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.same")
    record = log.makeRecord(log.name, logging.WARNING, __file__, 1, "caf\u00e9 %s", ("\u2603",), None,
                            extra={"request_id": "r-1", "big": 2**70, "codes": ["A"]})
    try:
        log.handle(record)
        assert drained(read) == (handler.formatter.format(record) + "\n").encode()  # type: ignore[union-attr]
        text = logging.Formatter("%(levelname)s %(message)s")
        handler.setFormatter(text)
        log.handle(record)
        assert drained(read) == "WARNING caf\u00e9 \u2603\n".encode()
    finally:
        handler.close()


def test_a_forked_child_flushes_on_its_own_timer_and_repeats_nothing() -> None:
    """A thread does not survive a fork: the child starts its own. The parent's gathered lines are written
    before the fork, once, not again by the child."""
    script = (
        "import logging, os, sys, time\n"
        "from observability.logs import BufferedStream\n"
        "log = logging.getLogger('fork'); log.propagate = False; log.setLevel(logging.INFO)\n"
        "handler = BufferedStream(sys.stdout, seconds=0.1); log.addHandler(handler)\n"
        "log.info('before the fork')\n"
        "if os.fork() == 0:\n"
        "    log.info('from the child'); time.sleep(2); os._exit(0)\n"  # _exit: no shutdown flush
        "os.wait()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.decode().splitlines() == ["before the fork", "from the child"], done.stderr.decode()


def test_a_lone_surrogate_still_makes_one_json_line(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.surrogate")
    try:
        log.warning("odd %s", "a\udc80b")
        [line] = lines(drained(read))
        assert line["message"] == "odd a\udc80b"
    finally:
        handler.close()


def test_a_line_after_closing_is_written_at_once(pipe: tuple[int, io.TextIOWrapper]) -> None:
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    log = logger_to(handler, "test.buffer.late")
    handler.close()
    log.info("late")
    assert [line["message"] for line in lines(drained(read))] == ["late"]
