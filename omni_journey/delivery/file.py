"""The file outbox, the default provider of every channel: one file a message under
``<OMNI_HOME>/outbox/<channel>/``, ``.eml`` for email (the MIME SES would get), ``.json``
otherwise, so a person can open what would have been sent.

Files are named by the idempotency key and appear atomically (written under a temporary
name, flushed, renamed): a re-send overwrites the same file, so this provider is
idempotent. A whole batch is flushed at once (:mod:`omni_journey.delivery.file_batch`),
before ``send_batch`` returns, so before the dispatcher marks any of its rows sent.

A file that cannot be written fails alone, transiently (``disk_error``: retried with
backoff). A full disk or quota (``ENOSPC``, ``EDQUOT``) is no fault of the message: it
pauses the file outbox for :data:`DISK_FULL_PAUSE` (``disk_full``), so the rest of the
pass's messages go back unsent without using up their attempts, and the next pass after
the pause writes them once there is room again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from omni_journey.delivery.base import OutgoingMessage, ProviderPausedError, SendResult
from omni_journey.delivery.file_batch import FileBatch
from omni_journey.delivery.mime_bytes import email_bytes
from omni_journey.errors import TransientDeliveryError
from omni_journey.settings import Settings

__all__ = ["DISK_FULL_PAUSE", "FileProvider", "create_file_provider", "outbox_file_name"]

#: How long a full disk pauses the file outbox (the messages wait, their attempts kept).
DISK_FULL_PAUSE = timedelta(minutes=1)
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
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
    """Writes each message to ``root/<channel>/<idempotency key>.{eml,json}``.

    ``max_batch`` is large: the file outbox is idempotent, so a bigger ambiguous window
    costs nothing, and one flush per claimed batch is the point of batching.
    """

    name = "file"
    max_batch = 1000
    idempotent: ClassVar[bool] = True

    def __init__(self, root: Path, *, sender: str) -> None:
        self.root = root
        self.sender = sender

    def path_for(self, message: OutgoingMessage) -> Path:
        suffix = ".eml" if message.channel == "email" else ".json"
        return self.root / message.channel / outbox_file_name(message.idempotency_key, suffix)

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Stage every message's file, then commit the batch: a message is reported sent
        only once its file is durably in place."""
        batch = FileBatch()
        errors: dict[int, OSError] = {}
        paths: dict[int, Path] = {}
        try:
            for message in messages:
                path = paths[message.id] = self.path_for(message)
                try:
                    batch.stage(path, self._document(message))
                except OSError as error:
                    errors[message.id] = error
            outcome = batch.commit()
        except BaseException:
            batch.discard()
            raise
        results = []
        for message in messages:
            path = paths[message.id]
            results.append(self._result(message, path, errors.get(message.id) or outcome.get(path)))
        return results

    def _document(self, message: OutgoingMessage) -> bytes:
        if message.channel == "email":
            return email_bytes(message, sender=self.sender)
        text = json.dumps(_json_document(message), indent=2, ensure_ascii=False)
        return (text + "\n").encode()

    @staticmethod
    def _result(message: OutgoingMessage, path: Path, error: OSError | None) -> SendResult:
        if error is None:
            return SendResult.sent(message, f"file:{message.channel}/{path.name}")
        detail = error.strerror or type(error).__name__
        if error.errno in _DISK_FULL:
            return SendResult.failed(
                message,
                ProviderPausedError(
                    "file", "disk_full", f"{detail}: free space", retry_after=DISK_FULL_PAUSE
                ),
            )
        return SendResult.failed(message, TransientDeliveryError("file", "disk_error", detail))


def create_file_provider(settings: Settings) -> FileProvider:
    """Entry point ``file``."""
    return FileProvider(settings.outbox_dir, sender=settings.email_from)
