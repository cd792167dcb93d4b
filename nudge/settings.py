"""Every setting Nudge reads, in one pydantic-settings object.

Environment variables use the prefix ``NUDGE_``; the Kafka URL may also come from
``KAFKA_URL`` and the providers' credentials use the names the providers' own docs
use (``TWILIO_ACCOUNT_SID``, ``SLACK_BOT_TOKEN``, ...). Secrets are ``SecretStr`` so
they never appear in a log or a repr. The README's settings table is checked
against this class by ``tests/unit/test_settings.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(f"NUDGE_{name}", *aliases)


EMBEDDED_SESSION_TIMEOUT = 3.0
"""The consumer session (s) on the embedded broker. Tansu holds a group join for half the
session the client asks for, waiting for other members; the embedded broker is this
worker's own, so there are none, and 6 s would make every start wait 3 s for nobody. 3 s
keeps Kafka's rule of a heartbeat (1 s) at most a third of the session."""


class Settings(BaseSettings):
    """Nudge's configuration. Defaults run everything on one machine with no setup."""

    model_config = SettingsConfigDict(env_prefix="NUDGE_", extra="ignore", populate_by_name=True)

    kafka_url: str | None = Field(
        default=None,
        validation_alias=_env("KAFKA_URL", "KAFKA_URL"),
        description="Kafka bootstrap servers, e.g. `kafka://broker1:9092;broker2:9092`. "
        "Unset: start the embedded Tansu broker on loopback.",
    )
    broker_storage: Literal["memory", "persistent"] = Field(
        default="memory",
        description="What the embedded broker (no `KAFKA_URL`) keeps its streams in. `memory`: "
        "lost when it stops. `persistent`: Tansu on a local S3 store (SeaweedFS, "
        "`<data_dir>/s3`), kept across restarts and reboots. Ignored when `KAFKA_URL` is set.",
    )
    broker_engine: Literal["auto", "tansu", "kafka"] = Field(
        default="auto",
        description="Which broker `KAFKA_URL` points at, for the corrections only Tansu needs "
        "(it under-reports partition ends). `auto`: Tansu when the broker is the embedded one "
        "or reports the embedded broker's cluster id `tansu_cluster`, else Apache Kafka.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where SQLite, the model registry and worker state live.",
    )
    db_path: Path | None = Field(
        default=None, description="SQLite database file. Unset: `<data_dir>/nudge.db`."
    )
    database_url: str | None = Field(
        default=None,
        description="`postgresql://user:password@host:5432/db`: keep the record in PostgreSQL "
        "(workers on several hosts share it). Unset: SQLite in `NUDGE_DB_PATH`.",
    )
    app_id: str = Field(
        default="nudge",
        description="Faust app id: the consumer group (intake's is `<app_id>-intake`) and the topic prefix of tables.",
    )
    partitions: int = Field(
        default=4, ge=1, le=256, description="Partitions of every topic Nudge creates."
    )
    replication: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Replicas of each topic Nudge creates (`nudge topics create`, and the worker's own: table changelogs).",
    )
    web_host: str = Field(
        default="127.0.0.1",
        description="Address the worker's web server binds. Anything but a loopback address "
        "needs `NUDGE_API_TOKEN`.",
    )
    web_port: int = Field(
        default=6066,
        ge=0,
        le=65535,
        description="Port of the worker's web server (ingest, webhooks).",
    )
    api_token: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("API_TOKEN"),
        description="Bearer token(s) that `POST /events` and the read APIs require "
        "(comma-separated: several are accepted at once, to rotate without downtime). "
        "Required when the web server binds a non-loopback address.",
    )
    web_max_connections: int = Field(
        default=1000,
        ge=8,
        le=100_000,
        description="Most connections the web server holds open; past it, the oldest idle one "
        "is closed to make room.",
    )
    web_header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a connection may take to send a request's headers (and may idle "
        "between requests) before it is closed.",
    )
    web_body_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds a client may take to send a body."
    )
    web_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted, after gzip decoding (bytes); larger → 413. "
        "`nudge events send` splits its posts to stay under it.",
    )
    web_rate_limit: float = Field(
        default=50.0,
        gt=0,
        description="Requests per second one client address may make (bursts of twice that); "
        "past it → 429. `/health` and `/ready` are not limited.",
    )
    public_url: str | None = Field(
        default=None,
        description="The URL providers call (behind a proxy), used to check webhook signatures.",
    )
    playbooks: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Playbook files or folders (comma-separated). Unset: the bundled default.",
    )
    playbooks_strict: bool = Field(
        default=True,
        description="A playbook or questionnaire file refused at start keeps the worker "
        "from reporting ready (`/ready` 503 naming file and line). `false`: run without it; "
        "`/ready`, `/metrics` and the log still name the refused file.",
    )
    questionnaires: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Questionnaire files or folders (comma-separated), beside the bundled ones; "
        "a file with a bundled id replaces it.",
    )
    scoring_rules: Path | None = Field(
        default=None,
        description="Points-scorer YAML (used until a model is promoted). Unset: bundled default.",
    )
    min_conversions: int = Field(
        default=50,
        ge=0,
        description="A model is used only once it was trained on at least this many "
        "conversions; until then the points scorer scores (rule_based=True).",
    )
    products: Path | None = Field(
        default=None,
        description="Product catalogue YAML: products, their value and how a purchase shows "
        "in the events (the `cross_sell:<product>` targets), and the churn rule.",
    )
    non_actionable: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["deal_value", "age_days", "employees", "events_total"],
        description="Model features never given as a reason (comma-separated feature or "
        "CRM field names, e.g. `deal_value,age_days,industry`): facts a rep cannot act on.",
    )
    notifier: Literal["auto", "console", "twilio", "slack"] = Field(
        default="auto",
        description="Where nudges go. `auto`: Twilio/Slack when their credentials are set, "
        "else the console.",
    )
    session_timeout: float | None = Field(
        default=None,
        ge=6.0,
        description="Kafka consumer session timeout (s); a worker's first join waits half "
        "of it. Default 6 s with `KAFKA_URL` (the smallest a stock broker accepts) and 3 s "
        "on the embedded broker, whose group this worker alone is in.",
    )
    heartbeat_interval: float = Field(
        default=1.0, gt=0, description="Kafka consumer heartbeat interval (s)."
    )
    batch_wait_ms: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Longest an agent waits to fill a micro-batch (ms): latency added per "
        "hop against throughput (fuller batches share each batch's broker round trip).",
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=5000,
        description="Longest a consumer fetch waits for data (ms). Tansu always waits this "
        "long when idle, so it bounds the latency each hop adds.",
    )
    producer_linger_ms: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="How long a producer waits to batch messages (ms). 0 sends one request "
        "per message, which cost a busy worker ~14 % of its time in socket writes.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="`auto`: pretty in a terminal, JSON otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    log_pii: bool = Field(
        default=False, description="Log phone numbers and emails unmasked (debugging only)."
    )

    ui_host: str = Field(
        default="127.0.0.1",
        description="Address `nudge ui` (the manager's cockpit) binds. Not loopback: "
        "`NUDGE_API_TOKEN` is required.",
    )
    ui_port: int = Field(default=6070, ge=0, le=65535, description="Port of `nudge ui`.")
    cockpit_users: SecretStr | None = Field(
        default=None,
        validation_alias=_env("COCKPIT_USERS"),
        description="Cockpit logins limited to one team: `name:team:token` entries, "
        "comma-separated (team `*`: every team). A manager logged in with one sees only "
        "that team's leads, reps and nudges. `NUDGE_API_TOKEN` logins see every team.",
    )
    ui_worker_url: str | None = Field(
        default=None,
        description="Workers (comma-separated URLs) the cockpit's lead page asks for a "
        "lead's decision trace; list every worker, since each keeps the trace of the leads "
        "its partitions hold. Unset: `http://<NUDGE_WEB_HOST>:<NUDGE_WEB_PORT>`.",
    )

    twilio_account_sid: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
        description="Twilio account SID.",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
        description="Twilio auth token (secret).",
    )
    twilio_from_number: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_FROM_NUMBER", "TWILIO_FROM_NUMBER"),
        description="Number texts are sent from (E.164).",
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_MESSAGING_SERVICE_SID"),
        description="Messaging Service to send from, instead of a number.",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),
        description="Slack bot token `xoxb-...` (secret).",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
        description="Slack signing secret (secret).",
    )

    segment_shared_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SEGMENT_SHARED_SECRET", "SEGMENT_SHARED_SECRET"),
        description="Shared secret of Segment's webhook destination: `/webhooks/segment` then "
        "refuses bodies without a matching `X-Signature` (secret).",
    )
    segment_track_map: Path | None = Field(
        default=None,
        description="YAML map of Segment track names to Nudge event types. Unset: the bundled "
        "`connectors/segment_tracks.yaml`.",
    )
    zoom_webhook_secret_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("ZOOM_WEBHOOK_SECRET_TOKEN", "ZOOM_WEBHOOK_SECRET_TOKEN"),
        description="Secret token of the Zoom app's event subscription; `/webhooks/zoom` "
        "refuses every request while it is unset (secret).",
    )
    zoom_hosts: dict[str, str] = Field(
        default={},
        description="Zoom host user id → Nudge rep id, as JSON (e.g. "
        '`{"KDcuGIm1QgePTO8WbOqwIQ": "rep-1"}`), for hosts whose Zoom email is not their rep '
        "email. A `meeting.ended` names the rep whose email is the host's, else the one here.",
    )
    hubspot_access_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_ACCESS_TOKEN"),
        description="HubSpot private app access token: enables reading and writing HubSpot "
        "(secret).",
    )
    hubspot_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("HUBSPOT_CLIENT_SECRET", "HUBSPOT_CLIENT_SECRET"),
        description="HubSpot app client secret, which signs its webhooks (secret).",
    )
    hubspot_api_url: str | None = Field(
        default=None,
        description="Base URL of the HubSpot API. Unset: `https://api.hubapi.com`.",
    )
    hubspot_field_map: Path | None = Field(
        default=None,
        description="YAML map of Nudge fields to HubSpot properties. Unset: the bundled "
        "`connectors/hubspot_fields.yaml`.",
    )
    salesforce_instance_url: str | None = Field(
        default=None,
        validation_alias=_env("SALESFORCE_INSTANCE_URL", "SALESFORCE_INSTANCE_URL"),
        description="Your Salesforce instance, e.g. `https://acme.my.salesforce.com`: enables "
        "the Salesforce sync and writer.",
    )
    salesforce_access_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SALESFORCE_ACCESS_TOKEN", "SALESFORCE_ACCESS_TOKEN"),
        description="Salesforce OAuth access token (secret); or set username, password and "
        "security token.",
    )
    salesforce_username: str | None = Field(
        default=None,
        validation_alias=_env("SALESFORCE_USERNAME", "SALESFORCE_USERNAME"),
        description="Salesforce API user, when no access token is given.",
    )
    salesforce_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SALESFORCE_PASSWORD", "SALESFORCE_PASSWORD"),
        description="That user's password (secret).",
    )
    salesforce_security_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SALESFORCE_SECURITY_TOKEN", "SALESFORCE_SECURITY_TOKEN"),
        description="That user's security token (secret).",
    )
    salesforce_field_map: Path | None = Field(
        default=None,
        description="YAML map of Nudge fields to Salesforce fields. Unset: the bundled "
        "`connectors/salesforce_fields.yaml`.",
    )
    salesforce_sync_interval: float = Field(
        default=30.0,
        ge=5.0,
        le=3600.0,
        description="Seconds between incremental reads of Salesforce (on one worker, the leader).",
    )
    decision_clock: Literal["wall", "event"] = Field(
        default="wall",
        description="What time playbook decisions and delivery policy use. `wall`: now. "
        "`event`: the time of the event that caused them, as `nudge playbooks simulate` "
        "does — to replay history through a worker and get the decisions simulate reports.",
    )
    history_age_hours: float = Field(
        default=0.0,
        ge=0.0,
        description="Events older than this (hours, by their occurred_at) update state and "
        "scores but fire no playbook rule: a re-sync after downtime or a CRM's late retries "
        "never text reps about the past. 0: off.",
    )
    twilio_api_url: str | None = Field(
        default=None,
        description="Base URL of the Twilio REST API. Unset: `https://api.twilio.com`. "
        "Tests and staging point it at a fake.",
    )
    slack_api_url: str | None = Field(
        default=None,
        description="Base URL of the Slack Web API. Unset: `https://slack.com/api/`.",
    )
    quiet_hours_start: str = Field(
        default="08:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Start of the hours nudges may be sent, in each rep's local time (HH:MM). "
        "Nudges outside the window are held, never dropped.",
    )
    quiet_hours_end: str = Field(
        default="21:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="End of the sending window, in each rep's local time (HH:MM).",
    )
    daily_limit: int = Field(
        default=20,
        ge=1,
        description="Most nudges one rep receives per local day. Questions, acknowledgements "
        'and "which one?" are not nudges: they neither count nor are limited by it.',
    )
    questionnaire_daily_limit: int = Field(
        default=4,
        ge=1,
        description="Most questionnaires one rep is asked per local day (a questionnaire asks "
        "one question at a time, the next only after an answer). Asks over it are dropped "
        "and counted (`questionnaires.over_limit`); separate from `NUDGE_DAILY_LIMIT`.",
    )
    reconcile_after: float = Field(
        default=60.0,
        ge=1.0,
        description="Seconds after which a nudge left in `sending` (its worker died mid-send) is "
        "looked up in the provider's log, then marked sent or queued again. Longer than any live "
        "send (three calls with a 10 s timeout each).",
    )

    @field_validator("non_actionable", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("playbooks", "questionnaires", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @property
    def api_tokens(self) -> list[str]:
        """The accepted bearer tokens (``NUDGE_API_TOKEN`` split on commas), maybe none."""
        return [t.get_secret_value() for t in self.api_token if t.get_secret_value()]

    @property
    def database(self) -> Path:
        """The SQLite file (used when no ``database_url`` is set)."""
        return self.db_path or self.data_dir / "nudge.db"

    @property
    def store_location(self) -> Path | str:
        """Where the record is: the PostgreSQL URL when set, else the SQLite file."""
        return self.database_url or self.database

    @property
    def embedded_broker(self) -> bool:
        """True when no Kafka URL is set and Nudge runs its own broker."""
        return not self.kafka_url

    @property
    def consumer_session_timeout(self) -> float:
        """``session_timeout`` as set, else 3 s on the embedded broker and 6 s on a Kafka."""
        if self.session_timeout is not None:
            return self.session_timeout
        return EMBEDDED_SESSION_TIMEOUT if self.embedded_broker else 6.0
