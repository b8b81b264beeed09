"""Configuration: YAML + environment, clear one-line errors naming key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from satshare.config import ConfigError, load_settings

LIVE = """
btcpay:
  url: https://btcpay.example.com
  api_key: a-real-looking-api-key
  store_id: STORE123
  webhook_secret: a-long-random-webhook-secret
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "satshare.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SATSHARE_") and name != "SATSHARE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_mean_sandbox(tmp_path: Path) -> None:
    settings = load_settings(None)
    assert settings.sandbox_mode
    assert settings.database.url == "sqlite+aiosqlite:///./satshare.db"
    assert settings.affiliate.share_bps == 5000
    assert settings.payments.reconcile_interval_seconds == 60
    assert settings.payments.invoice_expiration_minutes == 15
    assert settings.server.base_url == "http://127.0.0.1:8000"


def test_example_file_is_valid_and_live_needs_secrets() -> None:
    example = Path(__file__).parents[1] / "satshare.example.yaml"
    settings = load_settings(str(example))
    assert [p.id for p in settings.plans] == ["monthly", "yearly"]
    assert settings.sandbox_mode


def test_yaml_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        LIVE
        + "affiliate:\n  share_bps: 4000\nserver:\n  port: 9000\n  public_url: https://pay.example.com/\n",
    )
    monkeypatch.setenv("SATSHARE_AFFILIATE__SHARE_BPS", "3000")
    monkeypatch.setenv("SATSHARE_DATABASE__URL", "postgresql://u@db/satshare")
    settings = load_settings(path)
    assert settings.affiliate.share_bps == 3000
    assert settings.server.port == 9000
    assert settings.server.base_url == "https://pay.example.com"
    assert settings.database.url == "postgresql://u@db/satshare"
    assert not settings.sandbox_mode
    assert settings.btcpay.webhook_secret is not None
    assert "a-long" not in repr(settings.btcpay)  # secrets never print


def test_config_env_variable_chooses_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("affiliate:\n  share_bps: 1234\n")
    monkeypatch.setenv("SATSHARE_CONFIG", str(other))
    assert load_settings(None).affiliate.share_bps == 1234


def test_invalid_value_names_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 8000\naffiliate:\n  share_bps: 20000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (message,) = caught.value.problems
    assert "affiliate.share_bps" in message
    assert "line 4" in message
    assert "10000" in message


def test_invalid_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATSHARE_PAYMENTS__INVOICE_EXPIRATION_MINUTES", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "SATSHARE_PAYMENTS__INVOICE_EXPIRATION_MINUTES" in str(caught.value)


def test_unknown_key_is_refused_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, "btcpay:\n  apikey: oops\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "btcpay.apikey" in str(caught.value)
    assert "line 2" in str(caught.value)
    assert "unknown key" in str(caught.value)


def test_plan_errors_point_into_the_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans:\n"
        "  - id: monthly\n    title: M\n    price_sats: 100\n    duration_days: 30\n"
        "  - id: weekly\n    title: W\n    price_sats: -5\n    duration_days: 7\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "plans[1].price_sats" in str(caught.value)
    assert "line 8" in str(caught.value)


def test_duplicate_plan_ids(tmp_path: Path) -> None:
    plan = "  - id: monthly\n    title: M\n    price_sats: 100\n    duration_days: 30\n"
    path = write(tmp_path, "plans:\n" + plan + plan)
    with pytest.raises(ConfigError, match="appears twice"):
        load_settings(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: [8000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "not valid YAML" in str(caught.value)
    assert "line" in str(caught.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("secret", ["changeme", "secret", "", "short"])
def test_placeholder_or_weak_secrets_refused_outside_sandbox(tmp_path: Path, secret: str) -> None:
    path = write(tmp_path, LIVE.replace("a-long-random-webhook-secret", repr(secret)))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "btcpay.webhook_secret" in str(caught.value)


def test_live_mode_needs_every_btcpay_key(tmp_path: Path) -> None:
    path = write(tmp_path, "btcpay:\n  url: https://btcpay.example.com\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("btcpay.api_key" in p and "SATSHARE_BTCPAY__API_KEY" in p for p in problems)


def test_secrets_may_come_from_env_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "btcpay:\n  url: https://btcpay.example.com\n  store_id: S1\n")
    monkeypatch.setenv("SATSHARE_BTCPAY__API_KEY", "key-from-env-123")
    monkeypatch.setenv("SATSHARE_BTCPAY__WEBHOOK_SECRET", "secret-from-env-123")
    settings = load_settings(path)
    assert settings.btcpay.api_key is not None
    assert settings.btcpay.api_key.get_secret_value() == "key-from-env-123"


def test_telegram_token_and_webhook_checks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "telegram:\n  token: changeme\n  webhook_url: http://pay.example.com/telegram/webhook\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    assert any("telegram.token" in p and "line 2" in p and "@BotFather" in p for p in problems)
    assert any("telegram.webhook_url" in p and "https://" in p for p in problems)
    good = write(tmp_path, "telegram:\n  token: 123456789:AAH" + "x" * 32 + "\n")
    assert load_settings(good).telegram.configured
