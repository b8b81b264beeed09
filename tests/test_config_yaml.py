"""The YAML file itself: a key given twice, broken syntax, a file that is not UTF-8 text or
cannot be read. Each is one line naming the file, the line and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from satshare.cli import app
from satshare.config import ConfigError, load_settings

pytestmark = pytest.mark.usefixtures("no_satshare_env")


def problems(config: str | bytes, name: str = "satshare.yaml") -> list[str]:
    """The problems load_settings reports for a file with this content (relative name, so
    the messages name it as an operator would give it)."""
    path = Path(name)
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(config, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(name)
    for problem in caught.value.problems:
        assert "\n" not in problem, problem
    return caught.value.problems


PLAN = "    title: Monthly\n    price_sats: 100\n    duration_days: 30\n"


def test_a_key_given_twice_in_a_section_is_refused() -> None:
    config = "server:\n  host: 127.0.0.1\n  port: 8000\n  host: 0.0.0.0\n"
    assert problems(config) == [
        "satshare.yaml line 4: server.host is given twice (first on line 2); keep one"
    ]


def test_a_section_given_twice_is_refused() -> None:
    config = "server:\n  port: 8000\naffiliate:\n  share_bps: 100\nserver:\n  port: 9000\n"
    assert problems(config) == [
        "satshare.yaml line 5: server is given twice (first on line 1); keep one"
    ]


def test_a_key_given_twice_in_a_plan_names_the_plan() -> None:
    config = "plans:\n  - id: monthly\n" + PLAN + "  - id: weekly\n" + PLAN + "    id: w2\n"
    assert problems(config) == [
        "satshare.yaml line 10: plans[1].id is given twice (first on line 6); keep one"
    ]


def test_every_key_given_twice_is_named_and_quoting_does_not_hide_one() -> None:
    config = (
        "server:\n  host: a\n  'host': b\n"
        'affiliate:\n  share_bps: 1\n  "share_bps": 2\n  share_bps: 3\n'
    )
    assert problems(config) == [
        "satshare.yaml line 3: server.host is given twice (first on line 2); keep one",
        "satshare.yaml line 6: affiliate.share_bps is given twice (first on line 5); keep one",
        "satshare.yaml line 7: affiliate.share_bps is given twice (first on line 5); keep one",
    ]


def test_a_merge_key_still_works_and_its_keys_may_be_overridden() -> None:
    Path("satshare.yaml").write_text(
        "plans:\n"
        "  - &monthly\n    id: monthly\n" + PLAN + "  - <<: *monthly\n"
        "    id: yearly\n    duration_days: 365\n"
    )
    settings = load_settings("satshare.yaml")
    monthly, yearly = settings.plans
    assert (yearly.id, yearly.title, yearly.price_sats, yearly.duration_days) == (
        "yearly",
        "Monthly",
        100,
        365,
    )
    assert monthly.duration_days == 30


def test_config_check_refuses_a_key_given_twice_in_one_line() -> None:
    Path("satshare.yaml").write_text("server:\n  host: 127.0.0.1\n  host: 0.0.0.0\n")
    result = CliRunner().invoke(app, ["--config", "satshare.yaml", "config", "check"])
    assert result.exit_code == 2, result.output
    assert "Configuration is valid" not in result.stdout
    assert result.stderr.strip().splitlines() == [
        "satshare: satshare.yaml line 3: server.host is given twice (first on line 2); keep one"
    ]


def test_an_unclosed_bracket_names_where_it_opened() -> None:
    assert problems("server:\n  port: [8000\n") == [
        "satshare.yaml line 3, column 1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence at line 2, column 9); fix the YAML syntax there"
    ]


def test_a_tab_in_the_indentation() -> None:
    assert problems("server:\n  port: 8000\n\thost: 0.0.0.0\n") == [
        "satshare.yaml line 3, column 1: found character '\\t' that cannot start any token "
        "(while scanning for the next token); YAML indents with spaces, not tabs: replace "
        "the tab there"
    ]


INDENTATION = (
    "fix the YAML syntax there: check the line's indentation against the lines above, "
    "and quote a value that contains ': '"
)


def test_a_line_indented_too_far() -> None:
    assert problems("server:\n  host: a\n    port: 1\n") == [
        f"satshare.yaml line 3, column 9: mapping values are not allowed here; {INDENTATION}"
    ]


def test_a_line_indented_too_little() -> None:
    assert problems("server:\n  host: a\n port: 1\n") == [
        "satshare.yaml line 3, column 2: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block mapping at line 1, column 1); "
        + INDENTATION
    ]


def test_a_second_document() -> None:
    assert problems("server:\n  port: 1\n---\nserver:\n  port: 2\n") == [
        "satshare.yaml line 3, column 1: a second YAML document starts here; keep one "
        "document per file"
    ]


def test_a_control_character() -> None:
    assert problems("server:\n  host: a\x00b\n") == [
        "satshare.yaml line 2, column 10: a control character (U+0000) is not allowed in "
        "YAML; remove it"
    ]


def test_a_file_that_is_not_utf8() -> None:
    assert problems("branding:\n  name: Café\n".encode("latin-1")) == [
        "satshare.yaml line 2, column 12: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_utf8_with_a_byte_order_mark_is_read() -> None:
    Path("satshare.yaml").write_bytes("\ufeffbranding:\n  name: Café\n".encode())
    assert load_settings("satshare.yaml").branding.name == "Café"


def test_a_directory_as_the_config_path(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_settings("conf")
    assert caught.value.problems == [
        "config file conf is a directory, not a file; give the path of the YAML file"
    ]


def test_a_directory_in_place_of_the_default_file(tmp_path: Path) -> None:
    # What a bind mount of a file the host lacks leaves behind: not silently the defaults.
    (tmp_path / "satshare.yaml").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.problems == [
        "config file satshare.yaml is a directory, not a file; give the path of the YAML file"
    ]


def test_an_unreadable_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("satshare.yaml").write_text("server:\n  port: 8000\n")

    def refuse(self: Path) -> bytes:  # chmod 000 does not stop root, who runs the tests
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as caught:
        load_settings("satshare.yaml")
    assert caught.value.problems == [
        "config file satshare.yaml cannot be read (permission denied); make it readable by the "
        "user that runs satshare"
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "affiliate:\n  shar_bps: 100\n",
            "config error: affiliate.shar_bps (satshare.yaml line 2): unknown key; did you "
            "mean share_bps? (see satshare.example.yaml for the valid keys)",
        ),
        (
            "log_levle: debug\n",
            "config error: log_levle (satshare.yaml line 1): unknown key; did you mean log_level? "
            "(see satshare.example.yaml for the valid keys)",
        ),
        (
            "plans:\n  - id: monthly\n" + PLAN + "    tilte: x\n",
            "config error: plans[0].tilte (satshare.yaml line 6): unknown key; did you mean "
            "title? (see satshare.example.yaml for the valid keys)",
        ),
        (
            "btcpay:\n  zzz: 1\n",
            "config error: btcpay.zzz (satshare.yaml line 2): unknown key (see "
            "satshare.example.yaml for the valid keys)",
        ),
    ],
)
def test_an_unknown_key_names_a_near_miss(config: str, expected: str) -> None:
    assert problems(config) == [expected]


def test_a_section_that_is_not_a_mapping() -> None:
    assert problems("server: [1, 2]\nbranding:\n  welcome: [hi]\n") == [
        "config error: server (satshare.yaml line 1): must be a mapping of settings "
        "(key: value lines)",
        "config error: branding.welcome (satshare.yaml line 3): must be a mapping "
        "(key: value lines)",
    ]
