"""Settings: one pydantic-settings tree, environment prefix ``OMNI_``.

Read only at the edges (cli, service, flows) and passed into constructors; importing
this module reads nothing. With no variable set, everything lives under ``./.omni/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

Provider = Literal["file", "ses", "sns", "sms-voice-v2", "fcm"]


class Settings(BaseSettings):
    """Every setting omni-journey reads. Each maps to an ``OMNI_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="OMNI_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".omni"),
        description="Where the embedded default lives: SQLite file, file outbox, rejects, reports.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the store. Unset: sqlite:///<OMNI_HOME>/omni.db (WAL mode). "
            "Production: postgresql+psycopg://user:pass@host/db."
        ),
    )
    project_dir: Path = Field(
        default=Path(),
        description="Folder holding journeys/, segments/ and templates/.",
    )
    write_keys: str = Field(
        default="",
        description="Comma-separated write keys the HTTP collector accepts (basic-auth user).",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("dev-insecure-secret"),
        description="Signs unsubscribe / preference links and webhooks. Set it in production.",
    )
    default_region: str = Field(
        default="US",
        description="ISO country used to read phone numbers written without a +country code.",
    )
    email_provider: Literal["file", "ses"] = Field(default="file", description="file or ses.")
    sms_provider: Literal["file", "sns", "sms-voice-v2"] = Field(
        default="file", description="file, sns or sms-voice-v2 (AWS End User Messaging SMS)."
    )
    push_provider: Literal["file", "fcm"] = Field(default="file", description="file or fcm.")
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Rows per batch for ingestion and the engine."
    )
    max_body_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Largest HTTP request body the collector accepts (after gzip decoding).",
    )

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: ``OMNI_DATABASE_URL`` or the SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'omni.db').as_posix()}"

    @property
    def accepted_write_keys(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.write_keys.split(",") if k.strip())

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def rejects_dir(self) -> Path:
        return self.home / "rejects"


def get_settings() -> Settings:
    """Read settings from the environment now (never at import time)."""
    return Settings()
