from __future__ import annotations

from pathlib import Path

import pytest

from neo_support.env import (
    ConfigError,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_matching,
    env_origins,
    env_secret,
    env_url,
)


def test_it_reads_booleans_in_the_usual_spellings() -> None:
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True
    assert env_bool("X", False, environ={"X": "  "}) is False


def test_a_malformed_boolean_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^DEBUG: .*'maybe'"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})


def test_integers_are_parsed_and_bounded() -> None:
    assert env_int("N", 3, environ={"N": "42"}) == 42
    with pytest.raises(ConfigError, match="N: expected a whole number"):
        env_int("N", 3, environ={"N": "4.5"})
    with pytest.raises(ConfigError, match="N: must be at least 1"):
        env_int("N", 3, minimum=1, environ={"N": "0"})
    with pytest.raises(ConfigError, match="N: must be at most 9"):
        env_int("N", 3, maximum=9, environ={"N": "10"})


def test_lists_drop_blank_items() -> None:
    assert env_list("L", ["a"], environ={"L": "x, y,,z "}) == ["x", "y", "z"]
    assert env_list("L", ["a"], environ={}) == ["a"]


def test_choices_and_patterns_reject_what_they_do_not_know() -> None:
    assert env_choice("D", "auto", ("auto", "float32"), environ={"D": "float32"}) == "float32"
    with pytest.raises(ConfigError, match="D: expected one of auto, float32"):
        env_choice("D", "auto", ("auto", "float32"), environ={"D": "fp8"})
    assert env_matching("DEV", "auto", r"cpu|cuda(:\d+)?", "cpu or cuda:N", environ={"DEV": "cuda:1"}) == "cuda:1"
    with pytest.raises(ConfigError, match="DEV: expected cpu or cuda:N"):
        env_matching("DEV", "auto", r"cpu|cuda(:\d+)?", "cpu or cuda:N", environ={"DEV": "tpu"})


def test_urls_are_checked_for_scheme_host_and_port() -> None:
    assert env_url("R", None, schemes=("redis",), environ={}) is None
    assert env_url("R", None, schemes=("redis",), environ={"R": "redis://h:6379/0"}) == "redis://h:6379/0"
    with pytest.raises(ConfigError, match="R: URL scheme must be one of redis"):
        env_url("R", None, schemes=("redis",), environ={"R": "http://h"})
    with pytest.raises(ConfigError, match="R: not a valid URL"):
        env_url("R", None, schemes=("redis",), environ={"R": "redis://h:port/0"})
    with pytest.raises(ConfigError, match="R: URL has no host"):
        env_url("R", None, schemes=("redis",), environ={"R": "redis:///0"})


def test_origins_must_be_http_urls() -> None:
    assert env_origins("O", environ={"O": "https://a.example,http://b.example:8000"}) == [
        "https://a.example",
        "http://b.example:8000",
    ]
    with pytest.raises(ConfigError, match="O: URL scheme"):
        env_origins("O", environ={"O": "a.example"})


def test_secrets_come_from_the_variable_or_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("s3cret\n")
    assert env_secret("K", environ={"K": "direct"}) == "direct"
    assert env_secret("K", environ={"K_FILE": str(secret_file)}) == "s3cret"
    assert env_secret("K", environ={}) is None


def test_a_secret_file_that_is_missing_empty_or_doubled_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="K_FILE: cannot read"):
        env_secret("K", environ={"K_FILE": str(tmp_path / "absent")})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="K_FILE: .* is empty"):
        env_secret("K", environ={"K_FILE": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="K: set either K or K_FILE"):
        env_secret("K", environ={"K": "a", "K_FILE": str(tmp_path / "empty")})
