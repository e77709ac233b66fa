"""The simulator's error answer: an HTTP status plus a Brightpearl-style error code.

The codes of the real service are used where the reference names them (CMNC-404, CMNC-010,
ORDC-024, ...), otherwise codes are invented in the same form.
"""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than success: status + Brightpearl error list (or string response)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad(message: str, code: str = "CMNC-400") -> ApiError:
    return ApiError(400, code, message)
