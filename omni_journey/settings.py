"""Settings: one pydantic-settings tree, environment prefix ``OMNI_``.

Read only at the edges (cli, service, flows) and passed into constructors; importing
this module reads nothing. With no variable set, everything lives under ``./.omni/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omni_journey.errors import ConfigError

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
        repr=False,  # may hold the database password
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
        repr=False,  # secrets: a settings object printed or logged never shows them
        description="Comma-separated write keys the HTTP collector accepts (basic-auth user).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Signs unsubscribe / click links and webhooks; at least 16 characters. Unset: with "
            "a SQLite store, a random key made once and kept in <OMNI_HOME>/secret.key (mode "
            "0600); with PostgreSQL, commands that sign or verify refuse to start."
        ),
    )
    previous_secret_keys: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Comma-separated keys that no longer sign but still verify links (key rotation: "
            "put the old OMNI_SECRET_KEY here, a new one in OMNI_SECRET_KEY)."
        ),
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
    whatsapp_provider: Literal["file", "socialmessaging"] = Field(
        default="file",
        description="file or socialmessaging (AWS End User Messaging Social, WhatsApp).",
    )
    webhook_provider: Literal["file", "webhook"] = Field(
        default="file",
        description="file (write the call to the outbox) or webhook (POST it, signed).",
    )
    email_from: str = Field(
        default="omni-journey <no-reply@example.com>",
        description="From address of every email (a verified SES identity in production).",
    )
    ses_configuration_set: str | None = Field(
        default=None,
        description="SES configuration set that publishes delivery events (bounces, complaints).",
    )
    unsubscribe_url: str | None = Field(
        default=None,
        pattern=r"^https://",
        description=(
            "https base URL of the one-click unsubscribe endpoint (RFC 8058); a signed token is "
            "appended as ?token=. Required by the ses provider."
        ),
    )
    sms_origination_identity: str | None = Field(
        default=None,
        description=(
            "Sender of SMS: an E.164 number, sender id, pool or phone-number ARN. Required by "
            "sms-voice-v2; for sns an E.164 number is the origination number, else a sender id."
        ),
    )
    sms_configuration_set: str | None = Field(
        default=None,
        description="End User Messaging SMS configuration set (delivery events); sms-voice-v2.",
    )
    sms_message_type: Literal["PROMOTIONAL", "TRANSACTIONAL"] = Field(
        default="PROMOTIONAL", description="SMS message type sent to AWS."
    )
    fcm_credentials_path: Path | None = Field(
        default=None,
        description="Path of the Firebase service-account JSON file. Required by the fcm provider.",
    )
    whatsapp_phone_number_id: str | None = Field(
        default=None,
        description="AWS End User Messaging Social origination phone number id.",
    )
    whatsapp_meta_api_version: str = Field(
        default="v20.0", description="Meta Graph API version sent with each WhatsApp message."
    )
    aws_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts per AWS call, botocore's own retries included (throttling, 5xx).",
    )
    rate_limits: str = Field(
        default="ses=14,sns=20,sms-voice-v2=20,fcm=1000,socialmessaging=20,webhook=50",
        pattern=r"^\s*([a-z0-9_-]+\s*=\s*[0-9]+(\.[0-9]+)?\s*(,\s*|$))*$",
        description=(
            "Messages per second per provider, as name=rate pairs; a provider not listed is "
            "not limited."
        ),
    )
    send_concurrency: int = Field(
        default=8, ge=1, le=256, description="Parallel provider calls within one provider batch."
    )
    dispatch_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Outbox rows the dispatcher claims at a time."
    )
    dispatch_claim_seconds: int = Field(
        default=300,
        ge=10,
        description=(
            "How long a claim on outbox rows lasts. A provider batch starts only while more than "
            "half of it is left; expired claims are taken over by the next pass."
        ),
    )
    dispatch_max_attempts: int = Field(
        default=6, ge=1, le=50, description="Provider calls per message before it is failed."
    )
    dispatch_backoff_seconds: int = Field(
        default=60,
        ge=1,
        description="First retry delay after a transient failure; doubles each attempt (x64 max).",
    )
    dispatch_in_doubt: Literal["fail", "resend"] = Field(
        default="fail",
        description=(
            "What to do with a message whose sender crashed during the provider call: fail it "
            "(never twice) or resend it (never lost). Idempotent providers always resend."
        ),
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one webhook POST."
    )
    feedback_topic_arns: str = Field(
        default="",
        description=(
            "Comma-separated SNS topic ARNs whose delivery feedback is accepted; empty refuses all."
        ),
    )
    frequency_cap: str | None = Field(
        default=None,
        pattern=r"^[0-9]+/([0-9]+[wdhms])+$",
        description=(
            'Cap across all journeys, as max/period ("3/1d": at most 3 messages per calendar '
            "day in the customer's time zone). Unset: no global cap."
        ),
    )
    link_base_url: str = Field(
        default="http://127.0.0.1:8765/l",
        description=(
            "Where signed unsubscribe (/u/...) and tracked click (/c/...) links point: the "
            "collector's public address followed by /l."
        ),
    )
    console_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description=(
            "Opens the read-only console under /console of `serve` (HTTP Basic: any user "
            "name, this token as the password); at least 16 characters. Unset: every "
            "/console address answers 404."
        ),
    )
    subject_max_chars: int = Field(
        default=78, ge=10, description="Email subjects longer than this get a warning."
    )
    sms_max_segments: int = Field(
        default=3, ge=1, le=10, description="An SMS needing more parts than this is an error."
    )
    render_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "Longest one message may take to render (all its templates); past it the "
            "message fails with render-timeout and the rest of the batch goes on."
        ),
    )
    render_max_chars: int = Field(
        default=1_000_000,
        ge=10_000,
        le=100_000_000,
        description=(
            "Most characters one message may write while rendering (loops and values "
            "counted as they run); past it the message fails with render-too-large."
        ),
    )
    trigger_max_age_hours: float = Field(
        default=24.0,
        gt=0,
        description=(
            "A trigger event older than this when a journey first sees it (a backfill, "
            "history imported before a journey launched) enters nobody."
        ),
    )
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Rows per batch for ingestion and the engine."
    )
    import_batch_size: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description=(
            "Events per transaction of a file import (`events import`, the ingest flow). "
            "A crash loses at most this many uncommitted events; importing the file "
            "again stores them (idempotent). The HTTP collector and the API keep one "
            "transaction per call."
        ),
    )
    import_reader: Literal["auto", "process", "inline"] = Field(
        default="auto",
        description=(
            "Where a file import reads and checks its lines. process: in a child process, "
            "while the importing process writes the chunk before (about twice as fast on "
            "two or more cores); inline: in the importing process; auto: process for files "
            "of 8 MiB or more on a machine with two or more cores."
        ),
    )
    rejects_retention_days: int = Field(
        default=30,
        ge=1,
        description=(
            "Days a rejects file (<OMNI_HOME>/rejects, rejected import lines as they were "
            "read: personal data) is kept; older ones are deleted when a new one is written."
        ),
    )
    max_body_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Largest HTTP request body the collector accepts (after gzip decoding).",
    )
    collector_rate_limit: float = Field(
        default=500.0, ge=0, description="Requests a second per write key (then 429); 0: no limit."
    )
    collector_rate_burst: float = Field(
        default=1000.0, ge=1, description="Requests a write key may make at once, above the rate."
    )

    channel_policy: Literal["learned", "rule"] = Field(
        default="learned",
        description=(
            "Who decides channel: best. learned: the active trained model (expected value minus "
            "cost, with exploration), the rule while none is trained; rule: always the rule "
            "(cheapest eligible channel: push, email, whatsapp, sms)."
        ),
    )
    channel_conversion_value: float = Field(
        default=25.0,
        ge=0,
        description="What one conversion is worth (margin, in the shop's currency) to the policy.",
    )
    channel_costs: str = Field(
        default="email=0.001,sms=0.07,push=0,whatsapp=0.06",
        pattern=r"^\s*([a-z]+\s*=\s*[0-9]+(\.[0-9]+)?\s*(,\s*|$))*$",
        description=(
            "Cost of one message per channel, as channel=cost pairs in the shop's currency; "
            "a channel not listed costs 0."
        ),
    )
    channel_epsilon: float = Field(
        default=0.05,
        ge=0,
        le=0.5,
        description=(
            "Share of best-channel decisions that explore a random eligible channel while a "
            "model decides."
        ),
    )
    channel_cold_epsilon: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description=(
            "Share of best-channel decisions that explore while no model is active (the rule "
            "decides the rest); 0 for the pure rule."
        ),
    )
    channel_send_time_explore: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Share of send_at: best sends placed in a random allowed hour instead.",
    )
    channel_attribution_hours: float = Field(
        default=72.0,
        gt=0,
        le=24 * 30,
        description=(
            "An order this many hours after a send, with no later send, converts that send "
            "(last touch): the label the model learns and evaluate scores."
        ),
    )
    channel_training_days: int = Field(
        default=180,
        ge=1,
        description="train and evaluate read decisions from this many days back.",
    )
    channel_min_conversions: int = Field(
        default=50,
        ge=1,
        description="train refuses to fit a model on fewer converted decisions than this.",
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
    def provider_rate_limits(self) -> dict[str, float]:
        """``OMNI_RATE_LIMITS`` as {provider name: messages per second}."""
        limits: dict[str, float] = {}
        for pair in self.rate_limits.split(","):
            if "=" in pair:
                name, rate = pair.split("=", 1)
                limits[name.strip()] = float(rate)
        return limits

    @property
    def accepted_feedback_topics(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.feedback_topic_arns.split(",") if t.strip())

    @property
    def rejects_dir(self) -> Path:
        return self.home / "rejects"


def get_settings() -> Settings:
    """Read settings from the environment now (never at import time).

    Raises :class:`ConfigError` naming the ``OMNI_*`` variable that is wrong.
    """
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "OMNI_" + str(first["loc"][0]).upper() if first["loc"] else "OMNI_*"
        raise ConfigError(name, first["msg"]) from None
