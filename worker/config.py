"""Configuration: one pydantic Settings model, read once at start and passed down."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

MASK = "********"
DEVELOPMENT_BSN_KEY = "local-development-only-key"  # accepted only against the local sandbox


class Topics(BaseModel):
    """Kafka topic names. Overridable one by one, e.g. TOPICS__EMPLOYEE_CHANGES=acme.employees."""

    sync_requests: str = Field("nmbrs-sync.sync-requests", description="Commands that start a poll (sync-now).")
    employee_changes: str = Field("nmbrs-sync.employee-changes", description="Employee change events.")
    company_changes: str = Field("nmbrs-sync.company-changes", description="Company change events.")
    reference_changes: str = Field("nmbrs-sync.reference-changes", description="Department/function/CAO change events.")
    plan: str = Field("nmbrs-sync.plan", description="Would-be change events of a dry run.")
    decisions_needed: str = Field("nmbrs-sync.decisions-needed", description="Needs-decision events.")
    decisions: str = Field("nmbrs-sync.decisions", description="Human decisions posted by any frontend.")
    followup_commands: str = Field("nmbrs-sync.followup-commands", description="Commands for locally owned data.")
    outcomes: str = Field("nmbrs-sync.outcomes", description="Outcome of every handled event or command.")
    status: str = Field("nmbrs-sync.status", description="Compacted per-step status (green/red with counts).")
    dead_letter: str = Field("nmbrs-sync.dead-letter", description="Malformed events with the reason.")


class Settings(BaseSettings):
    """Everything the worker needs to know, from environment variables or an optional `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", env_nested_delimiter="__", extra="ignore", validate_default=True)

    # Kafka
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How to talk to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers (SSL/SASL_SSL).")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key for mutual TLS.")
    kafka_app_id: str = Field("nmbrs-sync", description="Consumer group / faust application id.")
    kafka_topic_partitions: int = Field(
        4, ge=1, le=256, description="Partitions of every topic we create (per-record order needs keys)."
    )
    kafka_replication_factor: int = Field(1, ge=1, description="Replication factor of topics we create.")
    kafka_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of topics we create (production: 2 with replication factor 3)."
    )
    kafka_dead_letter_retention_days: int = Field(
        90, ge=1, description="Days the dead-letter topic keeps a message: long, so none vanishes unread."
    )
    topics_ensure: bool = Field(
        True,
        description="Create missing topics at start (false when Strimzi, Terraform or a platform team manage them:"
        " the worker then only checks that they exist with the configured partition counts).",
    )
    topics: Topics = Field(default_factory=Topics, description="Topic names.")

    # PostgreSQL
    database_url: SecretStr = Field(
        SecretStr("postgresql://nmbrs_sync:nmbrs_sync@127.0.0.1:54329/nmbrs_sync"),
        description="PostgreSQL DSN (postgresql://user:password@host:port/db); the password is secret.",
    )
    database_password: SecretStr | None = Field(
        None,
        description="Password for DATABASE_URL's user (secret), so the URL itself can sit in a ConfigMap;"
        " replaces a password in the URL.",
    )
    database_pool_max: int = Field(5, ge=2, le=100, description="Largest asyncpg pool size.")

    # Nmbrs
    nmbrs_base_url: str = Field(
        "http://127.0.0.1:8089/soap/v3/",
        description="SOAP v3 base: https://api.nmbrs.nl/soap/v3/, https://api-sandbox.nmbrs.nl/soap/v3/ "
        "or the local sandbox.",
    )
    nmbrs_username: str = Field("sandbox@example.nl", description="Nmbrs login e-mail of the API user.")
    nmbrs_token: SecretStr = Field(SecretStr("sandbox-token"), description="Nmbrs API token (secret).")
    nmbrs_domain: str = Field("sandbox", description="Nmbrs subdomain only, e.g. 'acme' for acme.nmbrs.nl.")
    nmbrs_read_bsn: bool = Field(
        True, description="Read BSNs (only to hash them); false uses PersonalInfoWithoutBSN calls."
    )
    nmbrs_bsn_hash_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_BSN_KEY),
        description="HMAC key for BSN hashes (secret); change it in production.",
    )
    nmbrs_rate_limit_per_s: float = Field(150.0, gt=0, description="Client-side SOAP call rate limit.")
    nmbrs_max_concurrency: int = Field(8, ge=1, le=64, description="SOAP calls in flight at most.")
    nmbrs_timeout_s: float = Field(120.0, gt=0, description="Timeout of one SOAP call (bulk calls are slow).")
    nmbrs_max_retries: int = Field(4, ge=0, le=20, description="Retries of a retryable SOAP failure.")

    # Poller
    poll_enabled: bool = Field(True, description="Run the poll loop in this worker (off: consume only).")
    poll_interval_s: float = Field(300.0, gt=0, description="Seconds between two change polls.")
    full_reconciliation_interval_s: float = Field(
        86400.0, gt=0, description="Seconds between two full reconciliations (snapshot reads)."
    )
    breaker_max_share: float = Field(
        0.10, gt=0, le=1, description="Share of employees a poll may remove/end/move before it is held."
    )

    # Reconciler
    auto_link_min_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Definite rule: link a fuzzy match at or above this score without asking (off by default).",
    )
    reconcile_batch_max: int = Field(
        200,
        ge=1,
        le=1000,  # a batch holds two advisory locks per employee (record, human): stay inside the lock table
        description="Change events the reconciler handles in one transaction at most (a batch holds the worker"
        " for its duration: larger batches are faster but delay decisions more).",
    )
    reconcile_batch_wait_s: float = Field(
        0.05,
        gt=0,
        le=5,
        description="Seconds the reconciler waits for a batch to fill before it handles what it has.",
    )

    # Worker
    # Not WEB_PORT: faust reads that environment variable itself and it would override ours.
    status_port: int = Field(6066, ge=0, le=65535, description="Port of the worker's status page (0 = off).")
    status_bind: str = Field(
        "127.0.0.1", description="Address of the status page: 0.0.0.0 in a container, so that probes reach it."
    )
    wedged_after_s: float = Field(
        600.0,
        gt=0,
        description="Seconds a consumer may have messages waiting without handling one before /healthz calls it"
        " wedged (503, so that Kubernetes restarts the worker).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json: one object a line.")

    # HR web app (nmbrs-sync web)
    hr_web_bind: str = Field("127.0.0.1", description="Address the HR web app listens on.")
    hr_web_port: int = Field(8090, ge=1, le=65535, description="Port of the HR web app.")
    hr_web_auth: Literal["accounts", "proxy"] = Field(
        "accounts",
        description="Who signs users in: 'accounts' (built-in users with passwords, `nmbrs-sync web add-user`) or "
        "'proxy' (an auth proxy such as oauth2-proxy in front sets the user header).",
    )
    hr_web_trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"],
        description="Addresses or CIDR networks (IPv4/IPv6) of the auth proxy, a JSON list such as "
        '["10.0.0.0/8"]: only from these is the user header believed (HR_WEB_AUTH=proxy).',
    )
    hr_web_user_header: str = Field("X-Forwarded-User", description="Header with the proxy's signed-in user name.")
    hr_web_email_header: str = Field("X-Forwarded-Email", description="Header with the proxy's user's e-mail.")
    hr_web_secure_cookies: bool = Field(
        False, description="Send the session cookie only over https (set true behind https)."
    )
    hr_web_session_hours: int = Field(8, ge=1, le=168, description="Hours a web session lasts after signing in.")

    # Notices ("meldingen"): in the app always; by e-mail when SMTP_HOST is set, by webhook when its URL is
    notice_interval_s: float = Field(60.0, gt=0, description="Seconds between two notice runs of the worker.")
    notice_question_waiting_days: int = Field(
        3, ge=1, description="Days a question may wait for a decision before it makes a notice of its own."
    )
    notice_poll_failures: int = Field(3, ge=1, description="Failed polls in a row that make a notice.")
    notice_digest_hour: int = Field(
        8, ge=0, le=23, description="Hour (Dutch time) of the daily e-mail digest; a held mass change is sent at once."
    )
    notice_app_url: str | None = Field(
        None, description="The HR web app's address as people open it (https://hr.example.nl), for links in e-mails."
    )
    notice_webhook_url: SecretStr | None = Field(
        None,
        description="Incoming webhook (Teams, Slack) that gets each new notice as a JSON POST (secret: the URL"
        " usually carries the token).",
    )
    notice_send_timeout_s: float = Field(30.0, gt=0, description="Timeout of one e-mail or webhook delivery.")
    smtp_host: str | None = Field(None, description="SMTP server for notice e-mails (unset: no e-mail).")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 for STARTTLS, 465 for TLS).")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (upgrade after connecting), tls (TLS from the start) or none (local relay)."
    )
    smtp_user: str | None = Field(None, description="SMTP user name; unset: no authentication.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (secret).")
    smtp_from: str | None = Field(None, description="Sender address of notice e-mails.")
    smtp_to: list[str] = Field([], description='Recipients of notice e-mails, a JSON list such as ["hr@example.nl"].')

    # Each secret can come from a file instead (X_FILE=/path, as Kubernetes mounts a Secret and systemd's
    # LoadCredential= provides one): then it is in no environment a `ps e` or a crash dump shows.
    database_url_file: Path | None = Field(None, description="File holding DATABASE_URL.")
    database_password_file: Path | None = Field(None, description="File holding DATABASE_PASSWORD.")
    nmbrs_token_file: Path | None = Field(None, description="File holding NMBRS_TOKEN.")
    nmbrs_bsn_hash_key_file: Path | None = Field(None, description="File holding NMBRS_BSN_HASH_KEY.")
    kafka_sasl_password_file: Path | None = Field(None, description="File holding KAFKA_SASL_PASSWORD.")
    smtp_password_file: Path | None = Field(None, description="File holding SMTP_PASSWORD.")
    notice_webhook_url_file: Path | None = Field(None, description="File holding NOTICE_WEBHOOK_URL.")

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in SECRET_FILE_SETTINGS:
            path = data.get(f"{name}_file")
            if path in (None, ""):
                continue
            if data.get(name) not in (None, ""):
                raise ValueError(f"set {name.upper()} or {name.upper()}_FILE, not both")
            try:
                # One trailing line end is the file's, not the secret's (echo, editors).
                data[name] = Path(path).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"{name.upper()}_FILE: cannot read {path}: {error.__class__.__name__}") from None
        return data

    @model_validator(mode="after")
    def _password_into_the_database_url(self) -> Settings:
        if self.database_password is not None:
            parts = urlsplit(self.database_url.get_secret_value())
            user = quote(unquote(parts.username or ""), safe="")
            password = quote(self.database_password.get_secret_value(), safe="")
            host = parts.netloc.rpartition("@")[2]
            self.database_url = SecretStr(urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}")))
        return self

    @field_validator("hr_web_trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"'{server}' is not host:port")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: SecretStr) -> SecretStr:
        if urlsplit(value.get_secret_value()).scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("nmbrs_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _bsn_key_is_secret_outside_the_sandbox(self) -> Settings:
        # BSNs are only 9 digits: with a known key every hash can be reversed by trying them all.
        key = self.nmbrs_bsn_hash_key.get_secret_value()
        local = urlsplit(self.nmbrs_base_url).hostname in ("127.0.0.1", "localhost", "::1")
        if not local and (key == DEVELOPMENT_BSN_KEY or len(key) < 16):
            raise ValueError("NMBRS_BSN_HASH_KEY must be a secret of at least 16 characters for a real Nmbrs")
        return self

    @model_validator(mode="after")
    def _min_insync_fits_the_replicas(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) cannot exceed KAFKA_REPLICATION_FACTOR"
                f" ({self.kafka_replication_factor}): no write would ever be acknowledged"
            )
        return self

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "kafka_security_protocol SASL_* needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _notice_channels_are_complete(self) -> Settings:
        if self.smtp_host and not (self.smtp_from and self.smtp_to):
            raise ValueError("SMTP_HOST needs SMTP_FROM and SMTP_TO (the notice e-mails' sender and recipients)")
        for name, url in (
            ("NOTICE_WEBHOOK_URL", self.notice_webhook_url.get_secret_value() if self.notice_webhook_url else None),
            ("NOTICE_APP_URL", self.notice_app_url),
        ):
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL")
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.notice_webhook_url and self.notice_webhook_url.get_secret_value())

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for printing."""
        shown = self.model_dump(mode="json")
        for name, value in self:
            if isinstance(value, SecretStr):
                shown[name] = MASK
        shown["database_url"] = _mask_password(self.database_url.get_secret_value())
        return shown


def _mask_password(dsn: str) -> str:
    """The DSN with its password masked, in the user info and in a `password=` query parameter."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, MASK if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


SECRET_FILE_SETTINGS = (
    "database_url",
    "database_password",
    "nmbrs_token",
    "nmbrs_bsn_hash_key",
    "kafka_sasl_password",
    "smtp_password",
    "notice_webhook_url",
)


class ConfigurationError(Exception):
    """Raised at start when the configuration is invalid; the message names each bad setting."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; turn pydantic's error into one that names the environment variables."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = "__".join(str(part) for part in problem["loc"]).upper() or "configuration"
            lines.append(f"{name}: {problem['msg']}")
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except SettingsError as error:  # a list or nested setting that is not valid JSON
        raise ConfigurationError(f"invalid configuration: {error}") from None
