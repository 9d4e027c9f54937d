"""A PostgreSQL cluster of a test's own (pg_createcluster), on a free port, which the test may
stop, freeze and start; never the shared server. Dropped afterwards whatever happens."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def _version() -> str:
    return max(os.listdir("/usr/lib/postgresql"), key=int)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    version: str
    name: str
    port: int

    @property
    def server_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, *action],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._ctl("start")
        deadline = time.monotonic() + 30
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            assert time.monotonic() < deadline, "the test cluster did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        """As a crash would: no checkpoint, connections cut."""
        self._ctl("stop", "-m", "immediate")

    def _postmaster(self) -> int:
        pid_file = Path(f"/var/lib/postgresql/{self.version}/{self.name}/postmaster.pid")
        return int(pid_file.read_text().split()[0])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stops answering new connections (SIGSTOP to the postmaster), as a hung host
        would: connecting neither succeeds nor is refused."""
        pid = self._postmaster()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def own_cluster(prefix: str = "bureau_test") -> Iterator[Cluster]:
    cluster = Cluster(_version(), f"{prefix}_{os.getpid()}", _free_port())
    try:
        # Trust for local TCP: the cluster lives only for this test, on loopback.
        subprocess.run(["pg_createcluster", cluster.version, cluster.name, "-p", str(cluster.port),
                        "--", "--auth=trust"], check=True, capture_output=True, timeout=120)
        cluster.start()
        yield cluster
    finally:
        subprocess.run(["pg_dropcluster", "--stop", cluster.version, cluster.name], capture_output=True, timeout=120)
