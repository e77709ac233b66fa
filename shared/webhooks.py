"""What the two webhook receivers share: `WebhookRejected`, the one error of a refused delivery."""

from __future__ import annotations


class WebhookRejected(ValueError):
    """A webhook request that must not be published: `status` is the HTTP answer, `code` a
    reason code (e.g. "BadSecret", "InvalidPayload"), `message` names the field and its problem."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @property
    def problem(self) -> str:
        """The message (the name the Dataverse receiver used)."""
        return self.message

    def as_dict(self) -> dict[str, str]:
        """The JSON body of the 4xx answer."""
        return {"error": self.code, "message": self.message}
