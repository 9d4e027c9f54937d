"""`bureau serve` and prometheus-client's multiprocess mode: when it is switched on, and the directory."""

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cli import _multiprocess_metrics
from settings import Settings

CLOSED = Settings(metrics_token=None, metrics_port=None, metrics_multiproc_dir=None)


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set first, so that monkeypatch records the variable's absence too: delenv of an unset variable records
    # nothing, and the directory a test made (then removed) stayed in the environment of every later
    # subprocess, whose prometheus-client then failed to open its files there.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")


@pytest.mark.parametrize(("workers", "metrics"), [(1, {"metrics_token": "t"}), (1, {"metrics_port": 9464}),
                                                  (4, {})])
def test_one_worker_or_closed_metrics_need_no_directory(workers: int, metrics: dict[str, Any]) -> None:
    chosen = dataclasses.replace(CLOSED, **metrics)
    assert _multiprocess_metrics(chosen, workers) == (chosen, None)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


@pytest.mark.parametrize("metrics", [{"metrics_token": "t"}, {"metrics_port": 9464}])
def test_several_workers_share_a_new_directory(metrics: dict[str, Any]) -> None:
    served, made = _multiprocess_metrics(dataclasses.replace(CLOSED, **metrics), 2)
    try:
        assert made is not None and Path(made).is_dir() and not any(Path(made).iterdir())
        assert served.metrics_multiproc_dir == made
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == made  # what the spawned workers inherit
    finally:
        if made:
            shutil.rmtree(made)


def test_the_operators_directory_is_used_and_emptied_of_old_metrics(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old run")
    (directory / "notes.txt").write_text("not ours")
    chosen = dataclasses.replace(CLOSED, metrics_token="t", metrics_multiproc_dir=str(directory))
    assert _multiprocess_metrics(chosen, 2) == (chosen, None)  # not ours to remove afterwards
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]
    missing = dataclasses.replace(CLOSED, metrics_multiproc_dir=str(tmp_path / "new"))
    _multiprocess_metrics(missing, 1)
    assert (tmp_path / "new").is_dir()
