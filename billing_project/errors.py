"""Domain errors raised by services; the API, admin and commands turn them into messages."""


class DomainError(Exception):
    """A business rule refused the request. `code` is stable for machines, `message` is for people."""

    code = "invalid"
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class NotAllowed(DomainError):
    code = "permission_denied"
    status_code = 403


class Conflict(DomainError):
    code = "conflict"
    status_code = 409
