"""The benchmark's --small run, so that it cannot rot (issue 13): it generates its dataset,
starts bureau, the floor and the ceiling as their users would, checks their answers against each
other and reports every figure. No timing is asserted: only that it ran and counted."""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench.workloads import READS
from tests.conftest import server_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


def test_small_benchmark_runs_checks_answers_and_counts_statements(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    name = f"bureau_bench_test_{os.getpid()}_{secrets.token_hex(3)}"
    server = make_url(server_url()).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--small", "--server", server, "--database", name, "--drop",
         "--contenders", "bureau-1,floor-1,ceiling-1", "--duration", "2", "--connections", "1", "--writes", "3",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    ran = {(r["workload"], r["contender"]) for r in results["results"]}
    assert ran == {(w.key, c) for w in READS for c in ("bureau-1", "floor-1", "ceiling-1")}
    assert all(r["errors"] == 0 and r["requests_per_second"] > 0 for r in results["results"])
    # The floor is one statement per request by construction; the proxy must see exactly that.
    assert results["statements"]["floor"] == {w.key: 1.0 for w in READS}
    # The ceiling answers from memory once it has an answer: none after the first request.
    assert results["statements"]["ceiling"] == {w.key: 0.0 for w in READS}
    assert set(results["statements"]["bureau"]) == {w.key for w in READS} | {"e", "f"}
    assert results["counts"]["memberships"] > 1000
    assert "| a | bureau-1 |" in done.stdout


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--contenders", "bureau-1,postgraphile5-2", "postgraphile5-2"), ("--workloads", "a,e", "e")])
def test_an_unknown_contender_or_workload_is_named_before_anything_runs(option: str, value: str,
                                                                         named: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.run", option, value], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"unknown {named} (choose from" in done.stderr
