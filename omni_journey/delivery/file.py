"""The file outbox, the default provider of every channel: one file a message under
``<OMNI_HOME>/outbox/<channel>/``, ``.eml`` for email (the MIME SES would get), ``.json``
otherwise, so a person can open what would have been sent.

Files are named by the idempotency key and written atomically (temp file, fsync,
rename): a re-send overwrites the same file, so this provider is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from omni_journey.delivery.base import OutgoingMessage, SendResult
from omni_journey.delivery.mime import build_email
from omni_journey.errors import TransientDeliveryError
from omni_journey.settings import Settings

__all__ = ["FileProvider", "create_file_provider", "outbox_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def outbox_file_name(idempotency_key: str, suffix: str) -> str:
    """A readable, collision-free file name for one idempotency key."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
    readable = _UNSAFE.sub("_", idempotency_key).strip("._")[:80]
    return f"{readable}-{digest}{suffix}"


def _json_document(message: OutgoingMessage) -> dict[str, Any]:
    content = message.content
    document: dict[str, Any] = {
        "message_id": message.id,
        "idempotency_key": message.idempotency_key,
        "channel": message.channel,
        "customer_id": message.customer_id,
        "journey": message.journey_key,
        "step": message.step_id,
        "message": message.message_key,
        "at": message.at.isoformat(),
        "to": message.to,
    }
    if message.channel == "sms":
        document["text"] = content.text if content.text is not None else content.body
    elif message.channel == "push":
        document.update(title=content.title, body=content.body, data=dict(content.data))
    elif message.channel == "whatsapp":
        document["service_window_open"] = message.service_window_open
        if message.service_window_open and content.body:
            document.update(type="text", body=content.body)
        else:
            document.update(
                type="template",
                template=content.template,
                language=content.language,
                params=list(content.params),
            )
    elif message.channel == "webhook":
        document.update(
            method="POST", body=dict(content.payload or {}), headers=dict(content.headers)
        )
    else:
        document.update(
            subject=content.subject, text=content.text, body=content.body, data=dict(content.data)
        )
    return document


class FileProvider:
    """Writes each message to ``root/<channel>/<idempotency key>.{eml,json}``."""

    name = "file"
    max_batch = 200
    idempotent: ClassVar[bool] = True

    def __init__(self, root: Path, *, sender: str) -> None:
        self.root = root
        self.sender = sender

    def path_for(self, message: OutgoingMessage) -> Path:
        suffix = ".eml" if message.channel == "email" else ".json"
        return self.root / message.channel / outbox_file_name(message.idempotency_key, suffix)

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            try:
                results.append(self._write(message))
            except OSError as error:
                code = "disk_error"
                results.append(
                    SendResult.failed(
                        message,
                        TransientDeliveryError(
                            "file", code, error.strerror or type(error).__name__
                        ),
                    )
                )
        return results

    def _write(self, message: OutgoingMessage) -> SendResult:
        path = self.path_for(message)
        if message.channel == "email":
            data = build_email(message, sender=self.sender).as_bytes()
        else:
            text = json.dumps(_json_document(message), indent=2, ensure_ascii=False)
            data = (text + "\n").encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp).replace(path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return SendResult.sent(message, f"file:{message.channel}/{path.name}")


def create_file_provider(settings: Settings) -> FileProvider:
    """Entry point ``file``."""
    return FileProvider(settings.outbox_dir, sender=settings.email_from)
