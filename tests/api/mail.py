"""A real SMTP server on loopback (aiosmtpd) for the tests, and reading the links it received.

Links are made only when the outbox sends their email (only a hash is stored), so a test
that follows a link delivers the outbox to this server and reads the link from the message.
"""

import asyncio
import re
import socket
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

from resolvers.outbox import SmtpTarget, deliver_due, parse_smtp_url
from resolvers.runtime import Runtime

LINK = re.compile(r"https?://\S+(/invitations/\S+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Recorder:
    """An aiosmtpd handler that keeps what it accepted, or refuses while `refuse` is set."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: str | None = None
        self.delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for _, rcpt, message in self.messages if address in rcpt]


class MailServer:
    def __init__(self, **smtp_options: Any) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **smtp_options)

    @property
    def target(self) -> SmtpTarget:
        return parse_smtp_url(f"smtp://127.0.0.1:{self.port}")

    def __enter__(self) -> "MailServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    async def deliver(self, runtime: Runtime) -> None:
        """One outbox pass to this server, as `bureau outbox deliver --once` makes it."""
        await deliver_due(runtime.database, self.target, runtime.now() + timedelta(seconds=1),
                          issuer=runtime.settings.issuer)

    async def link_to(self, runtime: Runtime, address: str) -> str:
        """The path of the newest link mailed to `address` (after delivering what is due)."""
        await self.deliver(runtime)
        for message in reversed(self.recorder.to(address)):
            match = LINK.search(message.get_content())
            if match:
                return match.group(1)
        raise AssertionError(f"no link was mailed to {address}")
