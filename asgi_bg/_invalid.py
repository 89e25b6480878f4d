"""The error a converter raises: one failed value, in pydantic's words."""

from __future__ import annotations

from typing import Any


class Invalid(Exception):
    """A value failed conversion or a check; ``loc`` is relative to the parameter.

    ``type`` and ``msg`` are pydantic's (``int_parsing``, "Input should be a valid
    integer..."), ``ctx`` the values the message names (``{"ge": 1}``). ``more`` holds
    further errors of the same value (pydantic may report several at once).
    """

    def __init__(
        self,
        type_: str,
        msg: str,
        value: Any,
        loc: tuple[Any, ...] = (),
        ctx: dict[str, Any] | None = None,
        more: tuple[Invalid, ...] = (),
    ) -> None:
        super().__init__(msg)
        self.type = type_
        self.msg = msg
        self.value = value
        self.loc = loc
        self.ctx = ctx
        self.more = more

    def at(self, *prefix: Any) -> Invalid:
        """The same error(s) with ``prefix`` in front of the location."""
        more = tuple(error.at(*prefix) for error in self.more)
        return Invalid(self.type, self.msg, self.value, (*prefix, *self.loc), self.ctx, more)

    def items(self) -> list[Invalid]:
        """This error and the ones reported with it, each on its own (flat)."""
        alone = Invalid(self.type, self.msg, self.value, self.loc, self.ctx)
        return [alone, *(item for error in self.more for item in error.items())]


def together(failures: list[Invalid]) -> Invalid:
    """One ``Invalid`` carrying every failure (the first, the rest in ``more``), as
    pydantic lists every failing item of a value."""
    first, *more = failures
    return Invalid(first.type, first.msg, first.value, first.loc, first.ctx, tuple(more))
