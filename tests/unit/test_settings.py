"""Metrics settings (BUREAU_METRICS_*): closed by default, parsed once, contradictions refused."""

import pytest

from settings import Settings

METRICS_VARIABLES = ("BUREAU_METRICS_TOKEN", "BUREAU_METRICS_PORT", "BUREAU_METRICS_HOST", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in METRICS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_metrics_are_closed_unless_configured() -> None:
    settings = Settings()
    assert (settings.metrics_token, settings.metrics_port, settings.metrics_multiproc_dir) == (None, None, None)
    assert settings.metrics_host == "127.0.0.1"


def test_token_is_trimmed_and_blank_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUREAU_METRICS_TOKEN", "  s3cret\n")
    assert Settings().metrics_token == "s3cret"
    monkeypatch.setenv("BUREAU_METRICS_TOKEN", "   ")
    assert Settings().metrics_token is None


def test_port_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUREAU_METRICS_PORT", "9464")
    monkeypatch.setenv("BUREAU_METRICS_HOST", "0.0.0.0")
    settings = Settings()
    assert (settings.metrics_port, settings.metrics_host) == (9464, "0.0.0.0")


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http", "94 64", "\u00b2"])
def test_a_port_that_is_no_port_is_refused(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("BUREAU_METRICS_PORT", port)
    with pytest.raises(ValueError, match="BUREAU_METRICS_PORT"):
        Settings()


def test_token_and_port_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Which one would apply to whom is unclear; refusing beats guessing on a security setting.
    monkeypatch.setenv("BUREAU_METRICS_TOKEN", "s3cret")
    monkeypatch.setenv("BUREAU_METRICS_PORT", "9464")
    with pytest.raises(ValueError, match="not both"):
        Settings()
