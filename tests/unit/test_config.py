"""Configuration: read from the environment, secrets masked, bad settings named."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from worker.config import MASK, ConfigurationError, load_settings
from worker.entrypoints.cli import main


def test_settings_come_from_environment_including_nested_topic_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("TOPICS__OUTCOMES", "acme.outcomes")
    monkeypatch.setenv("POLL_INTERVAL_S", "60")
    settings = load_settings(_env_file=None)
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.topics.outcomes == "acme.outcomes"
    assert settings.poll_interval_s == 60


def test_masked_configuration_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMBRS_TOKEN", "tok-very-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pg-very-secret@db.example:5432/regi")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "sasl-very-secret")
    shown = json.dumps(load_settings(_env_file=None).masked())
    for secret in ("tok-very-secret", "pg-very-secret", "sasl-very-secret", "local-development-only-key"):
        assert secret not in shown
    assert "postgresql://app:" + MASK + "@db.example:5432/regi" in shown


def test_config_command_prints_masked_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NMBRS_TOKEN", "tok-very-secret")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["nmbrs_token"] == MASK
    assert "tok-very-secret" not in out


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port-here", "KAFKA_BOOTSTRAP_SERVERS"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL"),
        ("POLL_INTERVAL_S", "-5", "POLL_INTERVAL_S"),
        ("NMBRS_BASE_URL", "ftp://nmbrs", "NMBRS_BASE_URL"),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "KAFKA_SASL_MECHANISM"),
    ],
)
def test_invalid_configuration_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=named):
        load_settings(_env_file=None)


def test_cli_exits_2_with_the_setting_name_on_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "0")
    assert main(["config"]) == 2
    assert "KAFKA_TOPIC_PARTITIONS" in capsys.readouterr().err


def test_base_url_gets_a_trailing_slash() -> None:
    assert load_settings(_env_file=None, nmbrs_base_url="http://127.0.0.1:8089/soap/v3").nmbrs_base_url == (
        "http://127.0.0.1:8089/soap/v3/"
    )


def test_a_password_in_the_query_string_or_next_to_an_ipv6_host_is_masked() -> None:
    from worker.config import _mask_password

    assert _mask_password("postgresql://u@db/x?password=s3cret&sslmode=require") == (
        f"postgresql://u@db/x?password={MASK.replace('*', '%2A')}&sslmode=require"
    )
    assert "s3cret" not in _mask_password("postgresql://u:s3cret@[::1]:5432/x")
    assert "[::1]:5432" in _mask_password("postgresql://u:s3cret@[::1]:5432/x")


def test_the_development_bsn_key_is_refused_for_a_real_nmbrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMBRS_BASE_URL", "https://api.nmbrs.nl/soap/v3/")
    with pytest.raises(ConfigurationError, match="NMBRS_BSN_HASH_KEY"):
        load_settings(_env_file=None)
    monkeypatch.setenv("NMBRS_BSN_HASH_KEY", "a-long-secret-from-the-vault")
    assert load_settings(_env_file=None).nmbrs_base_url == "https://api.nmbrs.nl/soap/v3/"


def test_secrets_are_read_from_files_named_by_x_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # As Kubernetes mounts a Secret: one file per key, often without, sometimes with a line end.
    (tmp_path / "token").write_text("tok-from-file\n")
    (tmp_path / "bsn-key").write_text("k" * 32)
    (tmp_path / "db-password").write_text("p@ss/wörd:1")
    monkeypatch.setenv("NMBRS_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("NMBRS_BSN_HASH_KEY_FILE", str(tmp_path / "bsn-key"))
    monkeypatch.setenv("NMBRS_BASE_URL", "https://api.nmbrs.nl/soap/v3/")  # demands a real BSN key
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example:5432/regi?sslmode=require")
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(tmp_path / "db-password"))
    settings = load_settings(_env_file=None)
    assert settings.nmbrs_token.get_secret_value() == "tok-from-file"
    assert settings.nmbrs_bsn_hash_key.get_secret_value() == "k" * 32
    # The password goes into the URL quoted, so a '@' or '/' in it cannot change the host.
    url = urlsplit(settings.database_url.get_secret_value())
    assert (url.hostname, url.port, url.query) == ("db.example", 5432, "sslmode=require")
    assert url.password is not None and unquote(url.password) == "p@ss/wörd:1"
    assert "p@ss" not in json.dumps(settings.masked()) and "p%40ss" not in json.dumps(settings.masked())


def test_a_secret_file_that_cannot_be_read_or_a_secret_given_twice_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NMBRS_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=r"NMBRS_TOKEN_FILE: cannot read .*missing: FileNotFoundError"):
        load_settings(_env_file=None)
    (tmp_path / "present").write_text("x")
    monkeypatch.setenv("NMBRS_TOKEN_FILE", str(tmp_path / "present"))
    monkeypatch.setenv("NMBRS_TOKEN", "also-in-the-environment")
    with pytest.raises(ConfigurationError, match="set NMBRS_TOKEN or NMBRS_TOKEN_FILE, not both"):
        load_settings(_env_file=None)


def test_min_insync_replicas_cannot_exceed_the_replication_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ConfigurationError, match="cannot exceed KAFKA_REPLICATION_FACTOR"):
        load_settings(_env_file=None)
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    assert load_settings(_env_file=None).kafka_min_insync_replicas == 2


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"nmbrs-sync {version('nmbrs-sync')}"
