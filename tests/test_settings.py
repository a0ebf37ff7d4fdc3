"""Settings of outside knowledge, read from VERIFY_* variables."""

from __future__ import annotations

import pytest

from verify.settings import Settings, SettingsError


def test_outside_knowledge_defaults():
    settings = Settings.from_env({})
    assert settings.geoip_editions == ("GeoLite2-City", "GeoLite2-ASN")
    assert settings.maxmind_url == "https://download.maxmind.com"
    assert settings.maxmind_account_id is None and settings.maxmind_license_key is None
    assert settings.feed_max_shrink == 0.5 and settings.feed_max_bytes == 64 * 1024 * 1024


def test_outside_knowledge_variables():
    settings = Settings.from_env({
        "VERIFY_MAXMIND_ACCOUNT_ID": "123456",
        "VERIFY_MAXMIND_LICENSE_KEY": "key",
        "VERIFY_MAXMIND_URL": "http://127.0.0.1:9000",
        "VERIFY_GEOIP_EDITIONS": "GeoIP2-City, GeoIP2-Anonymous-IP",
        "VERIFY_DOWNLOAD_TIMEOUT": "2.5",
        "VERIFY_FEED_MAX_BYTES": "1000",
        "VERIFY_FEED_MAX_SHRINK": "0.2",
    })
    assert settings.geoip_editions == ("GeoIP2-City", "GeoIP2-Anonymous-IP")
    assert (settings.maxmind_account_id, settings.maxmind_license_key, settings.maxmind_url) == ("123456", "key", "http://127.0.0.1:9000")
    assert (settings.download_timeout, settings.feed_max_bytes, settings.feed_max_shrink) == (2.5, 1000, 0.2)


@pytest.mark.parametrize(
    "variable, value",
    [("VERIFY_FEED_MAX_SHRINK", "1.5"), ("VERIFY_FEED_MAX_SHRINK", "0"), ("VERIFY_FEED_MAX_BYTES", "lots"), ("VERIFY_DOWNLOAD_TIMEOUT", "-1")],
)
def test_bad_values_are_refused(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_console_settings():
    assert Settings.from_env({}).secret_key is None  # the console is off until a key is set
    settings = Settings.from_env({"VERIFY_SECRET_KEY": "s" * 40, "VERIFY_CONSOLE_IDLE_MINUTES": "5"})
    assert (settings.secret_key, settings.console_idle_minutes) == ("s" * 40, 5)
    with pytest.raises(SettingsError, match="VERIFY_CONSOLE_IDLE_MINUTES"):
        Settings.from_env({"VERIFY_CONSOLE_IDLE_MINUTES": "0"})


def test_webhook_settings():
    assert (Settings.from_env({}).webhook_timeout, Settings.from_env({}).serve_deliveries) == (10.0, True)
    settings = Settings.from_env({"VERIFY_WEBHOOK_TIMEOUT": "2.5", "VERIFY_SERVE_DELIVERIES": "off"})
    assert (settings.webhook_timeout, settings.serve_deliveries) == (2.5, False)
    with pytest.raises(SettingsError, match="VERIFY_SERVE_DELIVERIES"):
        Settings.from_env({"VERIFY_SERVE_DELIVERIES": "sometimes"})
    with pytest.raises(SettingsError, match="VERIFY_WEBHOOK_TIMEOUT"):
        Settings.from_env({"VERIFY_WEBHOOK_TIMEOUT": "0"})


def test_sqlite_group_commit_setting():
    assert Settings.from_env({}).sqlite_group_commit is True
    assert Settings.from_env({"VERIFY_SQLITE_GROUP_COMMIT": "off"}).sqlite_group_commit is False
    with pytest.raises(SettingsError, match="VERIFY_SQLITE_GROUP_COMMIT"):
        Settings.from_env({"VERIFY_SQLITE_GROUP_COMMIT": "sometimes"})
