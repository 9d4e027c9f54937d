"""R118: the request's line is written by observability.logs.log_fields. Where the line can only reach
one JSON BufferedStream (`bureau serve`'s configuration) it is encoded and gathered directly; the bytes
must be those logging's own path writes, and any other configuration must take logging's path. Read
here from a real pipe, as `bureau serve`'s stderr is read."""

import contextlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from observability.logs import BufferedStream, JsonLines, RequestIdFilter, log_fields
from tests.unit.test_log_buffer import drained, pipe  # noqa: F401 - the fixture

NAME = "test.log_fields"


@pytest.fixture
def configured(pipe: tuple[int, io.TextIOWrapper]) -> Iterator[tuple[int, BufferedStream, logging.Logger]]:  # noqa: F811
    """A logger whose records reach only a JSON BufferedStream on a pipe, as log_config configures the root."""
    read, stream = pipe
    handler = BufferedStream(stream, seconds=60)
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestIdFilter())
    parent = logging.getLogger(NAME)
    saved = parent.handlers, parent.propagate, parent.level
    parent.handlers, parent.propagate, parent.level = [handler], False, logging.INFO
    try:
        yield read, handler, logging.getLogger(NAME + ".request")  # a child: the line propagates, as in the app
    finally:
        parent.handlers, parent.propagate, parent.level = saved
        handler.close()


@contextlib.contextmanager
def alone(handler: BufferedStream, *after: logging.Handler) -> Iterator[None]:
    """Only `handler` on the parent (then `after`): pytest attaches its capture to every logger that does
    not propagate as each test begins, and a capture must (and does) take logging's path."""
    parent = logging.getLogger(NAME)
    saved = parent.handlers
    parent.handlers = [handler, *after]
    try:
        yield
    finally:
        parent.handlers = saved


def logged(read: int, handler: BufferedStream) -> list[dict[str, Any]]:
    handler.flush()
    return [json.loads(line) for line in drained(read).split(b"\n") if line]


def records_made(action: Callable[[], None]) -> int:
    """How many LogRecords `action` made."""
    made = 0
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        nonlocal made
        made += 1
        return factory(*args, **kwargs)

    logging.setLogRecordFactory(counting)
    try:
        action()
    finally:
        logging.setLogRecordFactory(factory)
    return made


def both_ways(log: logging.Logger, read: int, handler: BufferedStream, level: int, message: str,
              fields: dict[str, Any], *args: object, without_record: bool = True) -> tuple[dict[str, Any],
                                                                                          dict[str, Any]]:
    """The line log_fields writes (`without_record`: without a LogRecord) and the one logging's own path
    writes, without their times."""
    assert records_made(lambda: log_fields(log, level, fields, message, *args)) == (0 if without_record else 1)
    log.log(level, message, *args, extra=fields)
    direct, through_logging = logged(read, handler)
    assert isinstance(direct.pop("time"), str) and isinstance(through_logging.pop("time"), str)
    return direct, through_logging


FIELDS = {"request_id": "r-1", "method": "POST", "path": "/graphql", "status": 200, "duration_ms": 1.234,
          "operation": "Node", "operation_type": "query", "client_id": "app", "error_codes": [],
          "user_error_codes": ["SEATS_IN_USE"]}
text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\%{}\n\x00\u2028'), max_size=30)


# The pipe is drained by every example: sharing it between them is safe.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=text, path=text, status=st.integers(min_value=100, max_value=599),
       codes=st.lists(text, max_size=3), client=st.none() | text,
       level=st.sampled_from([logging.INFO, logging.WARNING, logging.ERROR]))
@example(message="GET /a%s%d 200", path="/\u00e9\u20ac", status=500, codes=["INTERNAL_SERVER_ERROR"], client=None,
         level=logging.ERROR)
def test_the_direct_line_is_the_line_logging_writes(configured: tuple[int, BufferedStream, logging.Logger],
                                                   message: str, path: str, status: int, codes: list[str],
                                                   client: str | None, level: int) -> None:
    read, handler, log = configured
    fields = {**FIELDS, "path": path, "status": status, "error_codes": codes, "client_id": client}
    with alone(handler):
        direct, through_logging = both_ways(log, read, handler, level, message, fields)
    assert direct == through_logging
    assert list(direct) == list(through_logging)  # the same keys in the same order: the same bytes


@pytest.mark.parametrize(("template", "args"), [
    ("%s %s %s %.1f ms", ("POST", "/graphql", 200, 1.25)), ("%(a)s-%(b)d", ({"a": "x", "b": 2},)),
    ("100%% %s", ("done",)), ("no arguments, 100%", ())])
def test_arguments_are_formatted_as_logging_formats_them(configured: tuple[int, BufferedStream, logging.Logger],
                                                        template: str, args: tuple[object, ...]) -> None:
    read, handler, log = configured
    with alone(handler):
        direct, through_logging = both_ways(log, read, handler, logging.INFO, template, FIELDS, *args)
    assert direct == through_logging


def test_a_line_orjson_does_not_write_is_written_as_logging_writes_it(
        configured: tuple[int, BufferedStream, logging.Logger]) -> None:
    read, handler, log = configured
    for odd in ({"status": 1 << 70}, {"path": "/\udc80"}):  # beyond 64 bits; a lone surrogate
        with alone(handler):
                direct, through_logging = both_ways(log, read, handler, logging.INFO, "odd", {**FIELDS, **odd},
                                                without_record=False)
        assert direct == through_logging


def test_a_message_that_does_not_format_is_reported_as_logging_reports_it(
        configured: tuple[int, BufferedStream, logging.Logger], monkeypatch: pytest.MonkeyPatch) -> None:
    """Not raised into the request that logs it: logging's handleError reports it and the request goes on."""
    read, handler, log = configured
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    with alone(handler):
        for template, args in (("%d ms", ("x",)), ("%(a", ({"a": 1},)), ("%(b)s", ({"a": 1},))):
            assert records_made(lambda: log_fields(log, logging.INFO, FIELDS, template, *args)) == 1
    assert [record.msg for record in reported] == ["%d ms", "%(a", "%(b)s"]
    assert logged(read, handler) == []


def test_the_direct_line_waits_in_the_buffer_and_a_warning_goes_at_once(
        configured: tuple[int, BufferedStream, logging.Logger]) -> None:
    read, handler, log = configured
    with alone(handler):
        assert records_made(lambda: log_fields(log, logging.INFO, FIELDS, "first")) == 0
        assert drained(read) == b"", "written at once: a system call a line"
        assert records_made(lambda: log_fields(log, logging.WARNING, FIELDS, "second")) == 0
    assert [line["message"] for line in logged(read, handler)] == ["first", "second"]


def test_a_level_below_the_logger_s_writes_nothing(configured: tuple[int, BufferedStream, logging.Logger]) -> None:
    read, handler, log = configured
    with alone(handler):
        assert records_made(lambda: log_fields(log, logging.DEBUG, FIELDS, "quiet")) == 0
    assert logged(read, handler) == []


class Recording(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Dropping(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@pytest.mark.parametrize("change", ["second handler", "handler after it", "logger filter", "handler filter",
                                    "handler level", "text formatter", "closed"])
def test_any_other_configuration_takes_logging_s_own_path(configured: tuple[int, BufferedStream, logging.Logger],
                                                         change: str) -> None:
    """Another handler must see the record (pytest's capture is one); a filter must decide it; a level or a
    formatter of the handler's must apply; a closed handler writes as StreamHandler does."""
    read, handler, log = configured
    recording = Recording()
    other_read, other_write = os.pipe()
    other = BufferedStream(open(other_write, "w", encoding="utf-8"), seconds=60)  # noqa: SIM115 - closed below
    other.setFormatter(JsonLines())
    match change:
        case "second handler":
            log.addHandler(recording)
        case "handler after it":
            pass  # on the parent, below
        case "logger filter":
            log.addFilter(Dropping())
        case "handler filter":
            handler.addFilter(Dropping())
        case "handler level":
            handler.setLevel(logging.ERROR)
        case "text formatter":
            handler.setFormatter(logging.Formatter("%(levelname)s %(message)s [%(request_id)s]"))
        case "closed":
            handler.close()
    try:
        with alone(handler, *([other] if change == "handler after it" else [])):
            assert records_made(lambda: log_fields(log, logging.INFO, FIELDS, "routed")) == 1
        if change != "closed":
            handler.flush()
        written = drained(read)
        other.flush()
        os.set_blocking(other_read, False)
        other_written = drained(other_read)
    finally:
        log.handlers, log.filters = [], []
        other.close()
        os.close(other_read)
    match change:
        case "second handler":
            [record] = recording.records
            assert record.getMessage() == "routed" and vars(record)["path"] == "/graphql"
            assert [json.loads(line)["message"] for line in written.splitlines()] == ["routed"]
        case "handler after it":  # each of the two gets the line
            assert json.loads(written)["message"] == json.loads(other_written)["message"] == "routed"
        case "logger filter" | "handler filter" | "handler level":
            assert written == b""
        case "text formatter":
            assert written == b"INFO routed [r-1]\n"
        case "closed":
            assert json.loads(written)["message"] == "routed"  # at once, with no buffer left to wait in
