"""Dependencies routes take: the runtime, a database session (swapped in tests), the person asking; the row-id type."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import BeforeValidator
from sqlalchemy.orm import Session

from devlink.errors import Unauthorized
from devlink.runtime import Runtime
from devlink.sync.principals import Principal
from devlink.web.responses import ROW_ID_MAX

__all__ = ["PrincipalDep", "RowId", "RuntimeDep", "SessionDep", "get_principal", "get_runtime", "get_session"]


def _plain_digits(value: object) -> object:
    """Only ASCII digits name a row: ``+3``, `` 3``, ``3_0`` (which int() reads as 30) are refused (422)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(rt: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with rt.sessions() as session:
        yield session


def get_principal(request: Request) -> Principal:
    """The person asking, as ``web.auth.authorize`` found them (it runs before every route)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # only an OPEN route runs without one, and such a route does not ask
        raise Unauthorized.nobody()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]
#: A path's row id: 1 to 2**63 - 1 (what the databases hold), so no id reaches SQL as an overflow or a negative.
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), BeforeValidator(_plain_digits)]  # Path first: its bounds reach
# the OpenAPI document as minimum/maximum
