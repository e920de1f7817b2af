"""The one envelope every message travels in: CloudEvents 1.0 (structured JSON mode).

The same attributes are mirrored into AMQP properties (see ``amqp_properties``) so that
brokers, tools and producers in other languages can route and trace without parsing the body.
On input both structured mode (body = the whole event) and binary mode (``ce-*`` headers,
body = ``data``) are accepted by ``engine.messages.codec``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE_STRUCTURED = "application/cloudevents+json"
CONTENT_TYPE_JSON = "application/json"


def new_id() -> str:
    """A fresh message id (UUID4, hex form)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """A CloudEvents 1.0 event; ``type`` is also the AMQP routing key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    subject: str = Field(min_length=1, max_length=128, description="the cluster id")
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, max_length=128)
    causationid: str | None = Field(None, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)

    def caused(self, type_: str, data: dict[str, Any], *, source: str) -> Envelope:
        """A follow-up message: same subject and correlation, caused by this one."""
        return Envelope(
            source=source,
            type=type_,
            subject=self.subject,
            correlationid=self.correlationid,
            causationid=self.id,
            data=data,
        )

    def amqp_properties(self) -> dict[str, Any]:
        """The AMQP basic properties that mirror the CloudEvents attributes."""
        return {
            "message_id": self.id,
            "type": self.type,
            "timestamp": self.time,
            "correlation_id": self.correlationid,
            "content_type": CONTENT_TYPE_STRUCTURED,
            "app_id": self.source,
            "headers": {
                "ce-specversion": self.specversion,
                "ce-id": self.id,
                "ce-source": self.source,
                "ce-type": self.type,
                "ce-subject": self.subject,
                "ce-correlationid": self.correlationid,
                **({"ce-causationid": self.causationid} if self.causationid else {}),
            },
        }

    def body(self) -> bytes:
        """Structured-mode body: the whole event as JSON."""
        return self.model_dump_json().encode()


def envelope_for(
    type_: str,
    subject: str,
    data: dict[str, Any],
    *,
    source: str,
    correlation_id: str | None = None,
) -> Envelope:
    """A new root message (a command from a client, say)."""
    message_id = new_id()
    return Envelope(
        id=message_id,
        source=source,
        type=type_,
        subject=subject,
        correlationid=correlation_id or message_id,
        data=data,
    )
