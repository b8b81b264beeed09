"""Configuration: YAML + environment, clear one-line errors naming key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from satshare.config import ConfigError, load_settings, redact_url, url_password

API_KEY = "3f0c2a9e7b1d4c6a8e5f0b2d9c7a1e3f5b8d0a2c"
WEBHOOK_SECRET = "k8Qz2vR7mW4nT9pL3xB6yH1c"
LIVE = f"""
btcpay:
  url: https://btcpay.example.com
  api_key: {API_KEY}
  store_id: STORE123
  webhook_secret: {WEBHOOK_SECRET}
"""
#: Shaped like a token from @BotFather (made up).
BOT_TOKEN = "7123456789:AAGk3mP9xQ2vL7nR4tW8yZ1cB5dF0hJ6sEu"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "satshare.yaml"
    path.write_text(text)
    return str(path)


pytestmark = pytest.mark.usefixtures("no_satshare_env")


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
    assert WEBHOOK_SECRET not in repr(settings.btcpay)  # secrets never print


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
    (message,) = caught.value.problems
    assert message.startswith(f"{path} line 3, column 1: expected ',' or ']'")
    assert message.endswith("; fix the YAML syntax there")


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("secret", ["changeme", "secret", "", "short"])
def test_placeholder_or_weak_secrets_refused_outside_sandbox(tmp_path: Path, secret: str) -> None:
    path = write(tmp_path, LIVE.replace(WEBHOOK_SECRET, repr(secret)))
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
    monkeypatch.setenv("SATSHARE_BTCPAY__API_KEY", API_KEY)
    monkeypatch.setenv("SATSHARE_BTCPAY__WEBHOOK_SECRET", WEBHOOK_SECRET)
    settings = load_settings(path)
    assert settings.btcpay.api_key is not None
    assert settings.btcpay.api_key.get_secret_value() == API_KEY


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
    good = write(tmp_path, f"telegram:\n  token: {BOT_TOKEN}\n")
    assert load_settings(good).telegram.configured


# --- secrets: a minimum length and no placeholders, in every section (issue #8, item 9) ----

WEAK = [
    ("changeme1234", "contains 'changeme'"),
    ("xxxxxxxxxxxx", "repeated"),
    ("your-btcpay-api-key", "starts with 'your'"),
    ("<your api key>", "template slot"),
    ("${BTCPAY_API_KEY}", "template slot"),
    ("k", "too short"),
    ("kP3x9Qm2", "too short"),
    ("a-long-random-webhook-secret", "contains 'secret'"),
    ("test-4f9a1c2e7b3d8a6f", "starts with 'test'"),
    ("Example-Key-4f9a1c2e7b3d", "contains 'example'"),
    ("abababababababababab", "repeated"),
    ("", "is empty"),
]


@pytest.mark.parametrize(("value", "why"), WEAK)
@pytest.mark.parametrize(
    "key",
    [
        "btcpay.api_key",
        "btcpay.webhook_secret",
        "lnbits.invoice_key",
        "lnbits.admin_key",
        "lnbits.webhook_secret",
        "bitpay.token",
        "bitpay.webhook_secret",
        "telegram.webhook_secret",
    ],
)
def test_weak_secrets_are_refused_naming_key_line_and_fix(
    tmp_path: Path, key: str, value: str, why: str
) -> None:
    section, name = key.split(".")
    others = {
        "btcpay": f"  url: https://btcpay.example.com\n  store_id: S1\n  api_key: {API_KEY}\n"
        f"  webhook_secret: {WEBHOOK_SECRET}\n",
        "lnbits": f"  url: https://lnbits.example.com\n  invoice_key: {API_KEY}\n",
        "bitpay": f"  url: https://bitpay.com\n  token: {API_KEY}\n",
        "telegram": f"  token: {BOT_TOKEN}\n",
    }[section]
    lines = [line for line in others.splitlines() if not line.startswith(f"  {name}:")]
    text = f"server:\n  port: 8000\n{section}:\n  {name}: {value!r}\n" + "\n".join(lines) + "\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    (problem,) = caught.value.problems
    assert problem.startswith(f"config error: {key} ("), problem
    assert "line 4" in problem and why in problem, problem
    assert "; " in problem.split(why, 1)[1], problem  # then how to fix it
    if len(value) > 3:  # the secret itself is never echoed
        assert value not in problem


def test_weak_secrets_are_refused_in_sandbox_mode_too(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  webhook_secret: a\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert "telegram.webhook_secret" in problem and "line 2" in problem
    assert "too short" in problem and "leave the key out to derive one" in problem


def test_sandbox_needs_no_secret_and_strong_ones_pass(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "server:\n  port: 8000\n")).sandbox_mode
    strong = write(
        tmp_path,
        LIVE + f"lnbits:\n  url: https://lnbits.example.com\n  invoice_key: {API_KEY}\n"
        f"  admin_key: 9b1e4d7a2c5f8e0b3d6a9c2f5e8b1d4a\n  webhook_secret: {WEBHOOK_SECRET}\n"
        f"telegram:\n  token: {BOT_TOKEN}\n  webhook_secret: Zq8_vN3-kR6wT1yB4mX7\n",
    )
    settings = load_settings(strong)
    assert settings.enabled_providers == ["btcpay", "lnbits"]


def test_a_weak_secret_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SATSHARE_BTCPAY__API_KEY", "changeme")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, LIVE))
    (problem,) = caught.value.problems
    assert "btcpay.api_key (from environment variable SATSHARE_BTCPAY__API_KEY)" in problem
    assert "placeholder" in problem


@pytest.mark.parametrize(
    "token",
    [
        "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",  # the Bot API docs' example (34)
        "7123456789:" + "x" * 35,
        "7123456789:your-bot-token-from-botfather-here",
        "7123456789:AAGk3mP9xQ2vL7nR4tW8yZ1cB5dF0hJ6sEuX",  # 36
        "AAGk3mP9xQ2vL7nR4tW8yZ1cB5dF0hJ6sEu",
    ],
)
def test_a_bot_token_must_have_botfathers_shape(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"telegram:\n  token: {token!r}\n"))
    (problem,) = caught.value.problems
    assert problem.startswith("config error: telegram.token (") and "line 2" in problem
    assert "@BotFather" in problem and token not in problem


def test_telegram_webhook_secret_only_in_telegrams_alphabet(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"telegram:\n  token: {BOT_TOKEN}\n  webhook_secret: 'k8Qz2vR7mW4nT9pL3x/B6y+H1c='\n",
    )
    with pytest.raises(ConfigError, match=r"telegram.webhook_secret .*line 3.*A-Z, a-z, 0-9"):
        load_settings(path)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://satshare:password@db/satshare", "contains 'password'"),
        ("postgresql://satshare:changeme@db/satshare", "contains 'changeme'"),
        ("postgresql://satshare:<password>@127.0.0.1:5432/satshare", "template slot"),
        ("postgresql://satshare:satshare@db/satshare", "too short"),
    ],
)
def test_a_weak_password_in_a_url_is_refused(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"database:\n  url: {url!r}\n"))
    (problem,) = caught.value.problems
    assert problem.startswith("config error: database.url (") and "line 2" in problem
    assert "password in this URL" in problem and why in problem
    assert url not in problem


def test_urls_without_or_with_a_strong_password_pass(tmp_path: Path) -> None:
    for url in (
        "postgresql://satshare@db/satshare",
        "postgresql://satshare:Vd8%2Fq3Lm9Rt2Wx7Kp4Zs@db/satshare",
        "sqlite+aiosqlite:///./satshare.db",
    ):
        assert load_settings(write(tmp_path, f"database:\n  url: {url!r}\n")).database.url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://admin:hunter2@btcpay.example.com", "https://***@btcpay.example.com"),
        ("https://admin@btcpay.example.com/", "https://***@btcpay.example.com/"),
        ("postgresql://u:p@ss@db:5432/x", "postgresql://***@db:5432/x"),
        ("postgresql://u:pa/ss?#@db/x", "postgresql://***@db/x"),
        (
            "postgresql+asyncpg://u:pw@[::1]:5432/x?ssl=1",
            "postgresql+asyncpg://***@[::1]:5432/x?ssl=1",
        ),
        (
            "https://btcpay.example.com/path@not-a-user",
            "https://btcpay.example.com/path@not-a-user",
        ),
        ("https://btcpay.example.com", "https://btcpay.example.com"),
        (
            "sqlite+aiosqlite:///./data@home/satshare.db",
            "sqlite+aiosqlite:///./data@home/satshare.db",
        ),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_password() -> None:
    assert url_password("postgresql://u:p%40ss@db/x") == "p@ss"
    assert url_password("postgresql://u:pa/ss@db/x") == "pa/ss"
    assert url_password("postgresql://u@db/x") is None
    assert url_password("postgresql://u:@db/x") is None
    assert url_password("sqlite:///./x.db") is None


def test_config_check_redacts_every_url_with_credentials(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from satshare.cli import app

    path = write(
        tmp_path,
        LIVE.replace(
            "https://btcpay.example.com", "https://admin:Hx7kP2qL9vR4mT8w@btcpay.example.com"
        )
        + "database:\n  url: postgresql://satshare:Vd8q3Lm9Rt2Wx7Kp4Zs@db/satshare\n"
        + "server:\n  public_url: https://proxy:Qm4nR8tW2yZ6cB1d@pay.example.com\n",
    )
    result = CliRunner().invoke(app, ["--config", path, "config", "check"])
    assert result.exit_code == 0, result.output
    # The user names too ("admin" alone is also in telegram.admin_chat_ids).
    for secret in (
        "Hx7kP2qL9vR4mT8w",
        "Vd8q3Lm9Rt2Wx7Kp4Zs",
        "Qm4nR8tW2yZ6cB1d",
        "admin:",
        "proxy:",
    ):
        assert secret not in result.output
    assert "https://***@btcpay.example.com" in result.output
    assert "postgresql://***@db/satshare" in result.output
    assert "https://***@pay.example.com" in result.output


# --- one URL type, cross-section checks as model validators (issue #9, item 6) -------------

URL_PROBLEMS = {
    "server.public_url": "must be an absolute http(s) URL such as https://pay.example.com",
    "btcpay.url": "must be the absolute URL of your BTCPay Server",
    "lnbits.url": "must be the absolute URL of your LNbits",
    "onchain.esplora_url": "must be the absolute URL of an Esplora API",
    "bitpay.url": "must be an absolute http(s) URL",
    "telegram.api_base_url": "must be an absolute http(s) URL",
    "telegram.webhook_url": "must be an absolute http(s) URL",
    "rates.url": "must be an absolute http(s) URL",
    "branding.terms_url": "must be an absolute http(s) URL",
}


def test_every_url_setting_is_checked_as_an_absolute_url() -> None:
    from satshare.config import Settings

    found = {
        f"{section}.{name}"
        for section, field in Settings.model_fields.items()
        if field.annotation is not None and hasattr(field.annotation, "model_fields")
        for name in field.annotation.model_fields
        if name.endswith("url")
    }
    # database.url is an SQLAlchemy URL; terms_url is shown to people as it is written;
    # redis.url is a redis:// URL (its own check).
    unchecked = {"database.url", "telegram.terms_url", "redis.url"}
    assert found - unchecked == set(URL_PROBLEMS)  # a new URL setting needs a row here


@pytest.mark.parametrize("key", sorted(URL_PROBLEMS))
def test_a_url_setting_must_be_absolute_and_loses_its_trailing_slash(
    tmp_path: Path, key: str
) -> None:
    section, name = key.split(".")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"{section}:\n  {name}: example.com/x\n"))
    assert caught.value.problems[0] == (
        f"config error: {key} ({tmp_path / 'satshare.yaml'} line 2): {URL_PROBLEMS[key]}"
    )
    from satshare.config import Settings

    complete = {
        "btcpay": {"api_key": API_KEY, "store_id": "S1", "webhook_secret": WEBHOOK_SECRET},
        "lnbits": {"invoice_key": API_KEY},
        "bitpay": {"token": API_KEY},
    }.get(section, {})
    settings = Settings(**{section: {**complete, name: "https://host.example.com/base/"}})
    assert getattr(getattr(settings, section), name) == "https://host.example.com/base"


def test_cross_section_checks_hold_for_settings_built_in_code() -> None:
    from pydantic import ValidationError

    from satshare.config import BTCPaySettings, Settings

    with pytest.raises(ValidationError) as caught:
        Settings(payouts={"provider": "lnbits"})
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (
            ("payouts", "provider"),
            "lnbits pays with the wallet's admin key; set lnbits.url and lnbits.admin_key "
            "(or choose manual)",
        )
    ]
    with pytest.raises(ValidationError) as caught:
        BTCPaySettings(url="https://btcpay.example.com", store_id="S1")
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("api_key",), "required when btcpay.url is set (or set SATSHARE_BTCPAY__API_KEY)"),
        (
            ("webhook_secret",),
            "required when btcpay.url is set (or set SATSHARE_BTCPAY__WEBHOOK_SECRET)",
        ),
    ]


LNBITS = f"lnbits:\n  url: https://lnbits.example.com\n  invoice_key: {API_KEY}\n"
FIAT_PLAN = (
    "plans:\n  - id: m\n    title: M\n    price: {amount: '1', currency: USD}\n"
    "    duration_days: 30\n"
)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            LIVE + "payouts:\n  provider: lnbits\n",
            [
                "config error: payouts.provider: lnbits pays with the wallet's admin key; set "
                "lnbits.url and lnbits.admin_key (or choose manual)"
            ],
        ),
        (
            LNBITS + "payouts:\n  provider: btcpay\n",
            ["config error: payouts.provider: btcpay needs the btcpay section configured"],
        ),
        (
            LIVE + "payouts:\n  provider: manual\n  instant_lightning: true\n"
            "affiliate:\n  hold_days: 3\n",
            [
                "config error: payouts.instant_lightning: instant splits need a payout provider "
                "that pays Lightning (payouts.provider: lnbits or btcpay)",
                "config error: payouts.instant_lightning: cannot send commissions at once while "
                "affiliate.hold_days keeps them pending; set one of them to 0",
            ],
        ),
        (
            LIVE + "payments:\n  default_provider: lnbits\n",
            [
                "config error: payments.default_provider: lnbits is not configured "
                "(configured: btcpay)"
            ],
        ),
        (
            LIVE + "plans:\n  - id: m\n    title: M\n    price_sats: 100\n    duration_days: 30\n"
            "    providers: [lnbits, stars, bitpay]\n    price_stars: 5\n",
            [
                "config error: plans[0].providers ({file} line 12): lnbits is not configured "
                "(configured: btcpay)",
                "config error: plans[0].providers: stars needs stars.enabled",
                "config error: plans[0].providers ({file} line 12): bitpay is not configured "
                "(configured: btcpay)",
            ],
        ),
        (
            LNBITS + FIAT_PLAN + "rates:\n  source: btcpay\n",
            ["config error: rates.source: btcpay needs the btcpay section configured"],
        ),
        (
            LNBITS + FIAT_PLAN + "rates:\n  source: fixed\n  fixed: {EUR: '1'}\n",
            ["config error: rates.fixed: no price for USD, which fiat-priced plans use"],
        ),
        (
            LIVE + "server:\n  workers: 2\n",
            [
                "config error: server.workers ({file} line 8): several processes share one "
                "database on PostgreSQL only; on SQLite one process serves: use 1 (or set "
                "database.url to PostgreSQL)"
            ],
        ),
        (
            "database:\n  url: postgresql://postgres@127.0.0.1/satshare\nserver:\n  workers: 2\n",
            [
                "config error: server.workers ({file} line 4): the sandbox's emulators keep "
                "their state inside one `satshare serve`: use 1 until a payment processor is "
                "configured"
            ],
        ),
        (
            "bitpay:\n  url: https://bitpay.com\n",
            [
                "config error: bitpay.token ({file} line 2): required when bitpay.url is set "
                "(or set SATSHARE_BITPAY__TOKEN)"
            ],
        ),
    ],
)
def test_cross_section_problems_word_for_word(
    tmp_path: Path, text: str, problems: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems == [p.format(file=path) for p in problems]


def test_server_workers_on_postgresql_and_within_bounds(tmp_path: Path) -> None:
    pg = "database:\n  url: postgresql://postgres@127.0.0.1/satshare\n"
    assert load_settings(write(tmp_path, LIVE + pg + "server:\n  workers: 4\n")).server.workers == 4
    assert load_settings(write(tmp_path, LIVE)).server.workers == 1
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, LIVE + pg + "server:\n  workers: 0\n"))
    assert caught.value.problems[0].startswith("config error: server.workers")


def test_one_list_of_rail_names() -> None:
    from typing import get_args

    from satshare.config import PROVIDERS, PlanSettings, Rail, TelegramSettings

    assert PROVIDERS == ("btcpay", "lnbits", "onchain", "bitpay")
    assert get_args(Rail) == (*PROVIDERS, "stars")
    rails = list(get_args(Rail))
    assert TelegramSettings(bot_rails=rails).bot_rails == rails
    plan = PlanSettings(
        id="p", title="P", price_sats=1, price_stars=1, duration_days=1, providers=rails
    )
    assert plan.providers == rails


# --- first hour (issue #10): misspelt variables, chat ids, every setting shown -------------


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("SATSHARE_TELEGRAM_TOKEN", "SATSHARE_TELEGRAM__TOKEN (telegram.token)"),
        ("SATSHARE_AFILIATE__SHARE_BPS", "SATSHARE_AFFILIATE__SHARE_BPS (affiliate.share_bps)"),
        ("satshare_btcpay__api_kee", "SATSHARE_BTCPAY__API_KEY (btcpay.api_key)"),
    ],
)
def test_a_misspelt_environment_variable_is_refused_with_the_real_one(
    monkeypatch: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.problems == [
        f"config error: environment variable {variable} matches no setting; "
        f"did you mean {suggestion}?"
    ]


def test_an_unrelated_variable_names_the_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATSHARE_XYZ", "1")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    (problem,) = caught.value.problems
    assert problem.startswith("config error: environment variable SATSHARE_XYZ matches no setting")
    assert "SATSHARE_<SECTION>__<KEY>" in problem


def test_real_variables_and_the_tools_own_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SATSHARE_LOG_LEVEL": "debug",
        "SATSHARE_PAYMENTS__INVOICE_EXPIRATION_MINUTES": "20",
        "SATSHARE_RATES__FIXED__USD": "95000",
        "SATSHARE_FAULT_SEED": "1",
        "SATSHARE_CHROMIUM": "/usr/bin/chromium",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(None)
    assert settings.log_level == "debug"
    assert settings.payments.invoice_expiration_minutes == 20
    assert settings.rates.fixed == {"USD": "95000"}


PLAN = """
plans:
  - id: monthly
    title: Monthly
    price_sats: 1000
    duration_days: 30
"""


def test_a_positive_chat_id_is_refused_with_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN + "    channels: [-1001000000001, 123456789]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"config error: plans[0].channels ({path} line 7): 123456789 is not")
    assert "negative" in problem


def test_a_chat_listed_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN + "    channels: [-1001000000001, -1001000000001]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems == [
        f"config error: plans[0].channels ({path} line 7): lists the same chat twice"
    ]


def test_a_plan_without_channels_is_valid_and_said_so(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from satshare.cli import app

    path = write(tmp_path, PLAN)
    settings = load_settings(path)
    assert settings.plans[0].channels == []
    assert settings.notices() == [
        "plan 'monthly' lists no channels: it grants no Telegram access (fine for a plan sold "
        "for a website or an API; add channels: [-100…] to sell a channel)"
    ]
    result = CliRunner().invoke(app, ["--config", path, "config", "check"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "plan 'monthly' lists no channels" in result.output


def test_config_check_prints_every_setting_with_secrets_masked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from satshare.cli import app
    from satshare.config import Settings

    path = write(tmp_path, LIVE + f"telegram:\n  token: {BOT_TOKEN}\n" + PLAN)
    result = CliRunner().invoke(app, ["--config", path, "config", "check"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for section, model in Settings.model_fields.items():
        if section == "plans":
            continue
        keys = getattr(model.annotation, "model_fields", None)
        for key in keys or [None]:
            shown = f"{section}.{key}" if key else section
            assert shown in result.output, shown
    for secret in (API_KEY, WEBHOOK_SECRET, BOT_TOKEN):
        assert secret not in result.output
    assert "set (hidden)" in result.output
