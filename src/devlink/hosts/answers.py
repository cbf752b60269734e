"""What every host client does with a stranger's HTTP answers: trust the right CAs, and fail readably.

Shared by the host kinds' clients (``github.py``, ``gitlab.py``), so a third one does not copy them.
"""

from __future__ import annotations

import functools
import inspect
import ssl
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from devlink.hosts.base import HostError
from devlink.hosts.protocol import HostSettings

__all__ = ["SHAPE_ERRORS", "checked_answers", "short", "ssl_context", "transport_error"]

P = ParamSpec("P")
R = TypeVar("R")

#: what reading an answer of an unexpected shape raises (a list where an object belongs, a missing field)
SHAPE_ERRORS = (TypeError, KeyError, AttributeError, ValueError, IndexError)


class _Client(Protocol):
    settings: HostSettings


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """The system CAs, or those of ``ca_bundle``; an unreadable bundle is a ``tls`` error naming it."""
    if not ca_bundle:
        return True
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise HostError(f"cannot read the CA bundle {ca_bundle}: {exc}", reason="tls") from None


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_answers(hint: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn an answer devlink cannot read into a ``HostError`` (``invalid``, with ``hint``), never a crash.

    Every answer is a stranger's JSON: a hostile or misconfigured server may send a list for an
    object or leave out an id.  Generator methods are checked as they are iterated.  The decorated
    methods belong to a client with ``settings``.
    """

    def malformed(client: object, exc: Exception) -> HostError:
        name = cast(_Client, client).settings.name
        return HostError(f"{name} answered in a shape devlink cannot read ({type(exc).__name__})",
                         reason="invalid", hint=hint)

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def checked_iteration(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    yield from cast(Iterator[Any], method(*args, **kwargs))
                except SHAPE_ERRORS as exc:
                    raise malformed(args[0], exc) from None

            return cast(Callable[P, R], checked_iteration)

        @functools.wraps(method)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except SHAPE_ERRORS as exc:
                raise malformed(args[0], exc) from None

        return checked

    return decorate


def transport_error(settings: HostSettings, exc: BaseException, *, timed_out: bool = False) -> HostError:
    """A failure to talk to the host, naming it: a timeout, TLS (with the CA bundle hint), or the network."""
    name = settings.name
    if timed_out:
        return HostError(f"{name} did not answer within {settings.timeout:g} s", reason="network", retry_after=60,
                         hint="check the host URL, the network and any proxy setting")
    text = str(exc) or type(exc).__name__
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if "CERTIFICATE_VERIFY_FAILED" in text or any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return HostError(f"TLS failure talking to {name}: certificate not trusted ({short(text)})", reason="tls",
                         hint="set a CA bundle for this host (--ca-bundle)")
    if "SSL" in text or "TLS" in text or any(isinstance(c, ssl.SSLError) for c in causes):
        return HostError(f"TLS failure talking to {name}: {short(text)}", reason="tls",
                         hint="check the host URL (http vs https) or set a CA bundle (--ca-bundle)")
    return HostError(f"cannot reach {name}: {short(text)}", reason="network", retry_after=60,
                     hint="check the host URL, the network and any proxy setting")
