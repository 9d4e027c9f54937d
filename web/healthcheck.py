"""The container's health check (the Dockerfile's HEALTHCHECK): exit 0 when this machine's server
answers 200 on /readyz (database reachable, R54), else 1. The port is PORT's, as `bureau serve` takes it."""

import sys
import urllib.error
import urllib.request

from settings import serve_port


def main() -> int:
    url = f"http://127.0.0.1:{serve_port()}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - a fixed http URL of loopback
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
