"""A request refused before anything was stored, and the JSON answer it becomes.

Its own module because every collector route (Segment calls, SNS, the body and write
key checks in front of them) refuses the same way, in the shape Segment's client
libraries read and log.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["RequestRefused"]


class RequestRefused(Exception):
    """A request refused before anything was stored; becomes a JSON error response."""

    def __init__(
        self, status: int, reason: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After (429)

    def response(self) -> JSONResponse:
        # ``code`` and ``message`` are what Segment's client libraries read and log.
        body = {
            "success": False,
            "reason": self.reason,
            "code": self.reason,
            "message": self.message,
        }
        headers = {"WWW-Authenticate": 'Basic realm="omni-journey"'} if self.status == 401 else {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse(body, status_code=self.status, headers=headers or None)
