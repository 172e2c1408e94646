"""Errors a remote API call can end in, split by what the caller should do next.

Transient errors are worth retrying with backoff (timeouts, resets, 429, 5xx).
Permanent errors need a person: bad credentials, a rejected payload, a refused address.
"""


class RemoteError(Exception):
    """A remote call did not succeed. ``message`` is written for the admin who reads it."""

    transient = False

    def __init__(self, message, *, status=None, body=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.code = code


class TransientRemoteError(RemoteError):
    """Worth retrying later: the remote was slow, unreachable, busy or broken for a moment."""

    transient = True


class RemoteTimeout(TransientRemoteError):
    pass


class RemoteUnavailable(TransientRemoteError):
    """Connection refused or reset, DNS failure, 5xx."""


class RemoteRateLimited(TransientRemoteError):
    def __init__(self, message, *, retry_after=None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PermanentRemoteError(RemoteError):
    """Retrying the same request will fail the same way."""


class RemoteAuthError(PermanentRemoteError):
    """The credentials were refused (401/403, or a login page instead of an answer)."""


class RemoteRejected(PermanentRemoteError):
    """The remote understood the request and refused it (validation, not found, conflict)."""


class RemoteAddressRefused(PermanentRemoteError):
    """The address points at this machine or a private network, which is allowed only in demo and test modes."""
