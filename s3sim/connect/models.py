"""Connect models: snake_case frozen dataclasses (no wire shapes here)."""

from __future__ import annotations

from datetime import datetime

from kmscore.frozen import frozen

CONNECT_PRINCIPAL = "connect.amazonaws.com"
OWNED_KEY_NAME = "connect-intermediate-store"
CONTEXT_KEY = "aws:connect:instanceArn"

# Item statuses (the pipeline state of one staged recording or transcript).
STAGED = "STAGED"
WAITING_FOR_CONFIG = "WAITING_FOR_CONFIG"
DELIVERING = "DELIVERING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
PENDING = (STAGED, WAITING_FOR_CONFIG, DELIVERING, FAILED)

CALL_RECORDINGS = "CALL_RECORDINGS"
SCREEN_RECORDINGS = "SCREEN_RECORDINGS"
CHAT_TRANSCRIPTS = "CHAT_TRANSCRIPTS"

# The resource types that go through the intermediate store, and their extensions.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    CALL_RECORDINGS: ("wav",),
    SCREEN_RECORDINGS: ("webm", "mp4"),
    CHAT_TRANSCRIPTS: ("json",),
}
CONTENT_TYPES = {
    "wav": "audio/wav",
    "webm": "video/webm",
    "mp4": "video/mp4",
    "json": "application/json",
}
CHANNELS = {CALL_RECORDINGS: "VOICE", SCREEN_RECORDINGS: "VOICE", CHAT_TRANSCRIPTS: "CHAT"}

# Every resource type of the API (configs for the others are refused as unsupported).
ALL_RESOURCE_TYPES = (
    "CHAT_TRANSCRIPTS",
    "CALL_RECORDINGS",
    "SCHEDULED_REPORTS",
    "MEDIA_STREAMS",
    "CONTACT_TRACE_RECORDS",
    "AGENT_EVENTS",
    "REAL_TIME_CONTACT_ANALYSIS_SEGMENTS",
    "ATTACHMENTS",
    "CONTACT_EVALUATIONS",
    "SCREEN_RECORDINGS",
    "REAL_TIME_CONTACT_ANALYSIS_CHAT_SEGMENTS",
    "REAL_TIME_CONTACT_ANALYSIS_VOICE_SEGMENTS",
    "EMAIL_MESSAGES",
)
IDENTITY_TYPES = ("SAML", "CONNECT_MANAGED", "EXISTING_DIRECTORY")

# What the service role may do through the grant on the customer's key.
GRANT_OPERATIONS = ("GenerateDataKey", "Decrypt", "DescribeKey", "Encrypt", "ReEncryptFrom")
# The service role's own IAM permissions: S3 only, no KMS (the grant is what gives KMS).
ROLE_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation")


@frozen
class Instance:
    instance_id: str
    arn: str
    account: str
    alias: str | None
    identity_management_type: str
    inbound_calls: bool
    outbound_calls: bool
    created: datetime
    service_role: str
    status: str = "ACTIVE"


@frozen
class StorageConfig:
    association_id: str
    instance_id: str
    resource_type: str
    bucket: str
    prefix: str
    key_arn: str
    grant_id: str | None
    grant_token: str | None
    created: datetime
    storage_type: str = "S3"


@frozen
class DataKeyRecord:
    """One data key of the intermediate store: wrapped under the AWS-owned key."""

    dk_id: str
    instance_id: str
    key_arn: str
    ciphertext_blob: bytes
    created: datetime
    items: int
    retired: bool


@frozen
class Item:
    """One staged recording or transcript and where it is in the pipeline."""

    item_id: str
    instance_id: str
    resource_type: str
    contact_id: str
    ext: str
    status: str
    staged_at: datetime
    updated_at: datetime
    size: int
    etag: str
    content_type: str
    blob_id: str | None
    dk_id: str | None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    location: str | None = None
    delivered_at: datetime | None = None
    generation: int = 1

    @property
    def staging_key(self) -> str:
        return f"{self.instance_id}/{self.resource_type}/{self.contact_id}.{self.ext}"


@frozen
class Contact:
    instance_id: str
    contact_id: str
    arn: str
    channel: str
    initiated: datetime


@frozen
class Recording:
    location: str  # <bucket>/<key>
    resource_type: str
    delivered_at: datetime
    staged_at: datetime
