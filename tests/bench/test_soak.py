"""The soak (bench/soak.py, issue 12 item 9) in its 20-second version: two server processes,
several firms, mixed reads and writes; zero errors and flat memory. And its verdict: an error
or a growing RSS fails the run."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.soak import Results, parse, summary

ROOT = Path(__file__).resolve().parents[2]


def test_twenty_seconds_of_mixed_traffic_on_two_servers() -> None:
    run = subprocess.run([sys.executable, "bench/soak.py", "--duration", "20"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0 and result["memory_flat"] and result["ok"]
    assert set(result["rss"]) == {"server1", "server2"}
    # Every kind of operation ran, writes included, and a fair number of requests in all.
    assert {"read_viewer", "read_firm", "read_company", "rename_company", "change_seats"} <= set(
        result["per_operation"])
    assert result["requests"] >= 50


def _results(errors: int, first_mb: float, last_mb: float) -> Results:
    results = Results()
    results.latencies["read_viewer"] += [0.01, 0.02, 0.03]
    if errors:
        results.errors["read_viewer: Failed: HTTP 500"] = errors
    results.rss += [(at, [int(first_mb * 2**20)]) for at in (0.0, 1.0, 2.0)]
    results.rss += [(at, [int(last_mb * 2**20)]) for at in (7.0, 8.0, 9.0)]
    return results


def _args(**overrides: object) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(parse(["--duration", "9"])), **overrides})


def test_the_verdict_fails_on_an_error_or_on_growth() -> None:
    assert summary(_results(0, 100, 110), _args(), 1)["ok"]
    assert not summary(_results(1, 100, 100), _args(), 1)["ok"]
    grown = summary(_results(0, 100, 126), _args(), 1)
    assert not grown["ok"] and not grown["memory_flat"] and grown["rss"]["server1"]["growth_mb"] == 26
    # The warm-up (before 0 s) does not count as the first third.
    warm = _results(0, 110, 110)
    warm.rss.insert(0, (-3.0, [50 * 2**20]))
    assert summary(warm, _args(), 1)["rss"]["server1"]["first_third_mb"] == 110
