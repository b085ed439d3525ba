"""Settings: `ODDLY_*` environment variables for where things live and secrets, and one YAML file
for feeds (and later rules and alert policy)."""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from oddly.pg_schema import in_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO_ROOT / "config"
RULES_FILE = "rules.yaml"
ALERT_POLICY_FILE = "alert_policy.yaml"


class ConfigError(ValueError):
    """The settings file is missing or wrong; the message names the file and the field."""


class HttpPolicy(BaseModel):
    """How politely and how persistently a feed is polled."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float = Field(10.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(10.0, ge=0)
    max_concurrency: int = Field(4, ge=1, le=64)
    requests_per_second: float = Field(5.0, gt=0)
    # A 429 asking to wait longer than this fails the request instead of stalling the cycle.
    max_retry_after_seconds: float = Field(30.0, ge=0)
    user_agent: str = "oddly-odds/0.1 (+https://github.com/oddly-odds)"


class FeedConfig(BaseModel):
    """One polled source: which agent, which bookmaker, where, how often."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    agent: str
    bookmaker: str
    base_url: str
    interval_seconds: float = Field(10.0, ge=1)
    enabled: bool = True
    sharp: bool = False
    http: HttpPolicy = Field(default_factory=HttpPolicy)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class OddlyConfig(BaseModel):
    """The settings file."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[FeedConfig] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _unique_names(cls, feeds: list[FeedConfig]) -> list[FeedConfig]:
        names = [f.name for f in feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique; repeated: {', '.join(dupes)}")
        return feeds

    @property
    def enabled_feeds(self) -> list[FeedConfig]:
        return [f for f in self.feeds if f.enabled]

    def feed(self, name: str) -> FeedConfig:
        for f in self.feeds:
            if f.name == name:
                return f
        raise ConfigError(f"no feed named {name!r}; configured: {', '.join(f.name for f in self.feeds)}")


class Settings(BaseSettings):
    """Where things live. Every field is an `ODDLY_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="ODDLY_", extra="ignore")

    home: Path = Field(default=REPO_ROOT / ".oddly", description="embedded stores live here")
    config_file: Path = Field(default=REPO_ROOT / "oddly.yaml", description="feeds, rules, policy")
    rules_file: Path = Field(
        default_factory=lambda data: edited_or_shipped(data["home"], RULES_FILE),
        description="detector thresholds (oddly.detect.rules); the app's saved version when there is one",
    )
    database_url: str | None = Field(
        default=None,
        description="one PostgreSQL database for every store (server mode): the warehouse, and the app "
        "database, Dagster and MLflow each in its own schema (app, dagster, mlflow); a store's own URL "
        "below overrides it",
    )
    warehouse_url: str | None = Field(default=None, description="PostgreSQL URL; DuckDB file when unset")
    dagster_pg_url: str | None = Field(default=None, description="dagster-postgres instance storage")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry store (PostgreSQL URL); SQLite file when unset",
    )
    marts_checks_seconds: float = Field(
        default=300.0,
        ge=0,
        description="the marts sensor runs the current-state marts' dbt data tests at most this often "
        "(0: every cycle); the models run every cycle",
    )
    retain_success_hours: float = Field(
        default=6.0,
        gt=0,
        description="how long the records of successful polls are kept (warehouse run log, Dagster's poll "
        "events and sensor ticks); the ticks themselves are kept whole",
    )
    retain_failure_days: float = Field(
        default=7.0,
        gt=0,
        description="how long failed polls, quarantined records and delivered outbox rows are kept",
    )
    prune_cron: str = Field(
        default="*/10 * * * *", description="when Dagster's prune_storage job deletes what is past its window"
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Prometheus /metrics of the Dagster code server (0: off)"
    )
    sender_metrics_port: int = Field(
        default=9465, ge=0, le=65535, description="Prometheus /metrics of `oddly send` (0: off)"
    )
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8765
    mlflow_port: int = Field(default=5000, description="where `oddly demo` serves the MLflow UI")
    streamlit_port: int = Field(default=8501, description="where `oddly demo` serves the Streamlit app")
    fake_telegram_port: int = Field(
        default=8081, description="where `oddly demo` serves the fake Bot API when no bot token is set"
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="Telegram bot token (secret: only from the environment, never logged)"
    )
    telegram_api_url: str | None = Field(
        default=None,
        description="Bot API base URL the token is appended to, e.g. the fake's http://127.0.0.1:8081/bot; "
        "Telegram's when unset",
    )
    # Comma-separated chat ids ("123,-100456"). An empty allow-list lets every chat use the bot (a
    # public bot); a private deployment sets it. Admin chats are always allowed and get /status.
    telegram_allowed_chats: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="chat ids that may use `oddly bot`; empty: every chat"
    )
    telegram_admin_chats: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="chat ids that administer `oddly bot` (always allowed)"
    )
    app_url: str = Field(
        default="http://127.0.0.1:8501", description="the Streamlit app, for links in alerts"
    )
    app_database_url: str | None = Field(
        default=None,
        description="alerts, audit, outbox, subscriptions: PostgreSQL URL; SQLite file when unset",
    )
    alert_policy_file: Path = Field(
        default_factory=lambda data: edited_or_shipped(data["home"], ALERT_POLICY_FILE),
        description="alert severities, cooldown and re-send rules (oddly.alerts.policy); the app's saved "
        "version when there is one",
    )

    @field_validator("telegram_allowed_chats", "telegram_admin_chats", mode="before")
    @classmethod
    def _chat_ids(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        ids = [part for part in re.split(r"[,\s]+", value.strip()) if part]
        bad = [part for part in ids if not re.fullmatch(r"-?\d+", part)]
        if bad:
            raise ValueError(f"chat ids are whole numbers separated by commas; not one: {', '.join(bad)}")
        return [int(part) for part in ids]

    @model_validator(mode="after")
    def _one_database(self) -> Settings:
        """With ODDLY_DATABASE_URL, every store not given its own URL lives in that database."""
        if self.database_url:
            self.warehouse_url = self.warehouse_url or self.database_url
            self.app_database_url = self.app_database_url or in_schema(self.database_url, "app")
            self.dagster_pg_url = self.dagster_pg_url or in_schema(self.database_url, "dagster")
            self.mlflow_tracking_uri = self.mlflow_tracking_uri or in_schema(self.database_url, "mlflow")
        return self

    @property
    def duckdb_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.duckdb_path}"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def mlflow_db_path(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """Always explicit: MLflow's own default is a file store relative to the working directory.
        A PostgreSQL URL is given the psycopg (3) driver, the one installed."""
        url = self.mlflow_tracking_uri
        if not url:
            return f"sqlite:///{self.mlflow_db_path.resolve()}"
        return with_psycopg_driver(url)

    @property
    def app_db_path(self) -> Path:
        return self.home / "app.db"

    @property
    def resolved_app_database_url(self) -> str:
        """SQLite under the home unless set; a PostgreSQL URL gets the psycopg (3) driver."""
        if not self.app_database_url:
            return f"sqlite:///{self.app_db_path.resolve()}"
        return with_psycopg_driver(self.app_database_url)

    @property
    def mlflow_artifacts_path(self) -> Path:
        return self.home / "mlartifacts"

    @cached_property
    def config(self) -> OddlyConfig:
        return load_config(self.config_file)


def edited_or_shipped(home: Path, name: str) -> Path:
    """`$ODDLY_HOME/<name>` once the app has saved a version there (the install's own, outside the
    repo), else the shipped `config/<name>`; read at every run, so a save applies to the next one."""
    edited = Path(home) / name
    return edited if edited.exists() else SHIPPED_CONFIG / name


def with_psycopg_driver(url: str) -> str:
    """A plain PostgreSQL URL with the psycopg (3) driver, the one installed; others unchanged."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def load_config(path: Path) -> OddlyConfig:
    if not path.exists():
        raise ConfigError(f"settings file {path} not found; set ODDLY_CONFIG_FILE or copy oddly.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from exc
    try:
        return OddlyConfig.model_validate(_expand_env(raw))
    except ValidationError as exc:
        raise ConfigError(f"settings file {path} is invalid:\n{exc}") from exc


def _expand_env(value: Any) -> Any:
    """`${VAR}` and `${VAR:-default}` in string values, so URLs and ports can come from the env."""
    if isinstance(value, str):
        return os.path.expandvars(_defaults(value))
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def _defaults(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        return os.environ.get(match.group(1), match.group(2))

    return re.sub(r"\$\{(\w+):-([^}]*)\}", sub, text)


def get_settings() -> Settings:
    return Settings()
