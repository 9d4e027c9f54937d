"""Logs without secrets (OWASP Logging Cheat Sheet).

Never logged: personal identity numbers, passwords, client secrets, tokens, invitation
links, GraphQL variable values. Expected client errors are logged at INFO without a
traceback; unexpected ones at ERROR with an error id that the client also receives.
The access log (uvicorn's) shows paths with the secret parts of links blanked out.
"""

import json
import logging
import os
import re
import select
import signal
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from observability.requests import current_id

REDACTED = "[redacted]"
# A link's secret is the path segment after /invitations/.
_LINK = re.compile(r"(/invitations/)[^/?#\s]+")
# Query parameters that carry secrets in OAuth and in our own links.
_SECRET_PARAMS = re.compile(
    r"((?:^|[?&])(?:token|code|access_token|refresh_token|id_token|client_secret|password|code_verifier)=)[^&#\s]*",
    re.IGNORECASE)


def redact(text: str) -> str:
    """A path or URL with the secrets it may carry blanked out."""
    if "=" not in text and "/invitations/" not in text:
        return text  # neither pattern can match: most paths, /graphql's among them
    return _SECRET_PARAMS.sub(rf"\g<1>{REDACTED}", _LINK.sub(rf"\g<1>{REDACTED}", text))


class RedactAccessLog(logging.Filter):
    """uvicorn's access log records (client, method, path, http version, status) as args."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Puts the redaction on uvicorn's access log, however uvicorn was started (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactAccessLog) for f in access.filters):
        access.addFilter(RedactAccessLog())
    # authlib's debug lines print the tokens it issues and the requests it validates.
    logging.getLogger("authlib").setLevel(logging.INFO)
    # Neither format shows a record's thread, process or calling line: not gathering them (the logging
    # HOWTO's "Optimization") was a third of the line every request writes (R91).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]


def new_error_id() -> str:
    """Names one unexpected error in the log and in the answer, so that they can be matched."""
    return uuid.uuid4().hex[:16]


def log_unexpected(log: logging.Logger, error_id: str, where: Any, exc: BaseException) -> None:
    log.error("unexpected error %s at %s", error_id, where, exc_info=exc)


LOG_FORMATS = ("json", "text")
# In text mode a line ends with the request's id, so that a developer can still follow one request.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s [%(request_id)s]"


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was written for ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_id() or "-"
        return True


# What every LogRecord holds; anything else was passed as `extra` and is a field of the line.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    """One JSON object a line: level, logger, message, the record's extra fields, its exception and
    stack, and the time (UTC, ISO 8601). Written in one pass and encoded by orjson: python-json-logger's
    general formatter was a tenth of a small read's CPU, on the line every request writes (R91)."""

    def format(self, record: logging.LogRecord) -> str:
        return self.encode(record).decode()

    def encode(self, record: logging.LogRecord) -> bytes:
        """The line as UTF-8, without its line break: what BufferedStream writes, with no round trip through str."""
        line: dict[str, Any] = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        # orjson writes an aware datetime as isoformat() does (microseconds only when there are some).
        line["time"] = datetime.fromtimestamp(record.created, UTC)
        try:
            return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # an integer beyond 64 bits, or a lone surrogate, which orjson does not write
            line["time"] = line["time"].isoformat()
            # A lone surrogate becomes its JSON escape (\udc80): the line stays one valid JSON object.
            return json.dumps(line, default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")


def json_formatter() -> logging.Formatter:
    return JsonLines()


def log_fields(logger: logging.Logger, level: int, fields: dict[str, Any], msg: str, *args: object) -> None:
    """`logger.log(level, msg, *args, extra=fields)`, written in the same bytes; R118: where the line can only
    reach one JSON BufferedStream (`bureau serve`'s configuration), it is encoded and gathered at once.
    logging's own path (a LogRecord, its filters, two locks and the formatter's walk of the record) was a
    seventh of a small read's instructions, for the line every request writes (R91). Anything else (a
    second handler, pytest's capture, a filter of someone else's, text lines, a value orjson does not write)
    goes logging's way."""
    if not logger.isEnabledFor(level):
        return
    handler = _only_json_handler(logger, level)
    if handler is not None:
        if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            args = args[0]  # type: ignore[assignment]  # as LogRecord takes a lone mapping: %(name)s
        try:
            line = {"level": logging.getLevelName(level), "logger": logger.name,
                    "message": msg % args if args else msg, **fields,  # as LogRecord.getMessage makes it
                    "time": datetime.fromtimestamp(time.time(), UTC)}
            encoded = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, ValueError, KeyError):
            pass  # logging's path: JsonLines' fallback writes it, or handleError reports a bad format
        else:
            with handler.lock:  # type: ignore[union-attr]
                if handler._fd is not None:  # not closed meanwhile
                    handler._gather(encoded + b"\n", level)
                    return
    logger.log(level, msg, *args, extra=fields)


def _only_json_handler(logger: logging.Logger, level: int) -> "BufferedStream | None":
    """The handler a record of `logger` at `level` reaches, when it is the only one, a BufferedStream writing
    JsonLines to a descriptor and filtering with nothing but RequestIdFilter (a no-op for a record that
    names its request); else None. As Logger.handle and callHandlers decide it."""
    if logger.filters:
        return None
    found: BufferedStream | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not BufferedStream:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found._fd is None or level < found.level or type(found.formatter) is not JsonLines \
            or any(type(f) is not RequestIdFilter for f in found.filters):
        return None
    return found


FLUSH_SECONDS = 0.2
# A write of at most PIPE_BUF bytes to a pipe is never split (POSIX): the workers of `bureau serve` share
# one stderr, and a larger write could have another worker's line spliced into it.
CHUNK_BYTES = select.PIPE_BUF


class BufferedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """R112: log lines written in chunks, as nginx's `access_log ... buffer= flush=` writes them. A write and
    a flush a line were 7.5 us of node(id)'s 209 (the whole line, formatting and logging's calls, 35). Lines
    are gathered up to PIPE_BUF bytes and written whole lines at a time; what is gathered goes out every
    `seconds` (a thread of its own, so a quiet server's last lines wait no longer), at once for a WARNING
    or worse, and when logging shuts down or the process forks. `seconds` 0, or a stream without a file
    descriptor (a test's capture), writes line by line as StreamHandler does."""

    def __init__(self, stream: Any = None, seconds: float = FLUSH_SECONDS, flush_level: int = logging.WARNING) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.seconds = seconds
        self.flush_level = flush_level
        self._fd: int | None = None
        try:
            if seconds > 0:
                self.stream.flush()  # what was written to it before goes first
                self._fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor under it
            self._fd = None
        self._gathered = bytearray()
        self._stopping = threading.Event()
        if self._fd is not None:
            _BUFFERED.add(self)
            _flush_before_termination()
            self._start()

    def _start(self) -> None:
        if not self._stopping.is_set():
            threading.Thread(target=self._flush_every, name="log-flush", daemon=True).start()

    def _flush_every(self) -> None:
        while not self._stopping.wait(self.seconds):
            if self._gathered:
                self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._fd is None:
            super().emit(record)
            return
        try:
            formatter = self.formatter
            line = (formatter.encode(record) if isinstance(formatter, JsonLines)
                    else self.format(record).encode("utf-8", "backslashreplace"))
            self._gather(line + b"\n", record.levelno)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own contract: a failing handler reports and goes on
            self.handleError(record)

    def _gather(self, line: bytes, levelno: int) -> None:
        """`line`, with its line break, gathered or written (the caller holds the lock)."""
        if len(self._gathered) + len(line) > CHUNK_BYTES:
            self._write_gathered()
        if len(line) > CHUNK_BYTES:
            self._write(line)  # longer than any write kept whole: alone, as it always went
        else:
            self._gathered += line
        if levelno >= self.flush_level:
            self._write_gathered()

    def _write_gathered(self) -> None:
        if self._gathered:
            gathered, self._gathered = bytes(self._gathered), bytearray()
            self._write(gathered)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._fd is None:
                super().flush()
                return
            try:
                self._write_gathered()
            except OSError:  # the stream is gone: nothing more can reach it
                self._gathered.clear()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        with self.lock:  # type: ignore[union-attr]
            self._fd = None  # a line after this is written at once, not left gathered
        _BUFFERED.discard(self)
        super().close()

    def _forked(self) -> None:
        self._gathered.clear()  # the parent's lines: it wrote them before forking
        self._start()


# The open handlers, for the fork hooks (registered once: a hook per handler would keep each alive).
_BUFFERED: "weakref.WeakSet[BufferedStream]" = weakref.WeakSet()


def _flush_all() -> None:
    for handler in list(_BUFFERED):
        handler.flush()


def _after_fork_in_child() -> None:
    for handler in list(_BUFFERED):
        handler._forked()  # noqa: SLF001 - the module's own hook


os.register_at_fork(before=_flush_all, after_in_child=_after_fork_in_child)


def _flush_before_termination() -> None:
    """uvicorn ends a graceful shutdown on SIGTERM by raising the signal again, so that the process dies
    of it, as its supervisor expects: no atexit, no logging.shutdown, and the last lines gathered (the
    requests before it, the shutdown's own) would be lost. With the default action in place, SIGTERM
    first writes them, then takes its default course. Made in each process the handler is configured in
    (uvicorn's workers among them), before uvicorn keeps the handler it finds to put back."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: object) -> None:
    _flush_all()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def log_config(log_format: str, level: str = "INFO", flush_seconds: float = FLUSH_SECONDS) -> dict[str, Any]:
    """logging.config.dictConfig for the server and uvicorn (`bureau serve` hands it to uvicorn, which
    applies it in every worker): one JSON object a line (JsonLines) or plain text, on stderr."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"the log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = ({"()": "observability.logs.json_formatter"} if log_format == "json"
                                 else {"format": TEXT_FORMAT})
    handler = {"class": "observability.logs.BufferedStream", "stream": "ext://sys.stderr", "formatter": "main",
               "filters": ["request_id"], "seconds": flush_seconds}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "observability.logs.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        # uvicorn's own loggers carry no handlers of their own here: everything goes through the root's.
        "loggers": {name: {"handlers": [], "level": level, "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
