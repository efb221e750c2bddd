"""The small set of typed errors every provider raises (SDK errors never leak past a provider)."""

from __future__ import annotations

from hub.errors import HubError


class LLMError(HubError):
    """Base: `provider` says which side failed; `retryable` whether trying again may help."""

    retryable = False

    def __init__(self, provider: str, message: str, *, partial: str = "") -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.partial = partial  # text already streamed to the caller before the failure


class ProviderUnavailable(LLMError):
    """Connection refused, 5xx, overloaded: the provider is down for now (failover material)."""

    retryable = True

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None, partial: str = "") -> None:
        super().__init__(provider, message, partial=partial)
        self.retry_after = retry_after  # the server's retry-after, honoured by the retry loop


class RateLimited(ProviderUnavailable):
    pass


class FirstTokenTimeout(ProviderUnavailable):
    """No first token within the provider's first-token timeout (not retried in place: fail over)."""

    retryable = False


class StallTimeout(ProviderUnavailable):
    """Tokens stopped arriving for longer than the stall timeout."""

    retryable = False


class StreamBroken(ProviderUnavailable):
    """The stream died after some output was already delivered: never retried in place."""

    retryable = False


class AuthFailed(LLMError):
    pass


class BadRequest(LLMError):
    pass
