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


OUTAGE_VARIABLES = ("BUREAU_DB_CONNECT_TIMEOUT", "BUREAU_DB_POOL_TIMEOUT", "BUREAU_DB_COMMAND_TIMEOUT",
                    "BUREAU_RETRY_AFTER")


def test_outage_settings_fail_fast_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUTAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.db_connect_timeout, settings.db_pool_timeout, settings.db_command_timeout,
            settings.retry_after) == (1.0, 1.0, 15.0, 5)
    monkeypatch.setenv("BUREAU_DB_CONNECT_TIMEOUT", "2.5")
    monkeypatch.setenv("BUREAU_RETRY_AFTER", "0.2")  # a header of whole seconds: rounded up, never 0
    assert (Settings().db_connect_timeout, Settings().retry_after) == (2.5, 1)


@pytest.mark.parametrize("name", OUTAGE_VARIABLES)
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9", "soon"])
def test_an_outage_setting_that_is_no_duration_is_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                                          value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()


def test_the_response_cache_is_off_with_a_short_ttl_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BUREAU_RESPONSE_CACHE", "BUREAU_RESPONSE_CACHE_TTL", "BUREAU_RESPONSE_CACHE_BYTES",
                 "BUREAU_RESPONSE_CACHE_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.response_cache, settings.response_cache_ttl) == (False, 10.0)
    assert settings.response_cache_bytes == 64 * 1024 * 1024
    assert settings.response_cache_key_prefix == "bureau:response:"
    monkeypatch.setenv("BUREAU_RESPONSE_CACHE", "ON")
    monkeypatch.setenv("BUREAU_RESPONSE_CACHE_TTL", "2.5")
    assert (Settings().response_cache, Settings().response_cache_ttl) == (True, 2.5)


@pytest.mark.parametrize(("name", "value"), [("BUREAU_RESPONSE_CACHE", "yes"), ("BUREAU_RESPONSE_CACHE_TTL", "0"),
                                             ("BUREAU_RESPONSE_CACHE_TTL", "nan"),
                                             ("BUREAU_RESPONSE_CACHE_BYTES", "-1")])
def test_a_response_cache_setting_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                                           value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()
