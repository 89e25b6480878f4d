"""The states of one request/response exchange and every move between them.

h11's style: each side is an enum, the legal moves are one table, and a move the
table does not allow is a bug in the server, reported as `PhaseError` rather than
left to show up later as a hung or garbled connection. What the *app* does wrong
(messages out of order) is checked before any move, with a message for the app's
author (see `cycle.py`).
"""

from __future__ import annotations

from enum import Enum


class PhaseError(RuntimeError):
    """The server tried a move its state table does not allow."""


class Response(Enum):
    """Where the response of one exchange is."""

    IDLE = "nothing sent"
    STARTED = "started, head held back until the first body message"
    SENDING = "head written (or being written), more to come"
    COMPLETE = "final body written: the connection may move on"
    BROKEN = "partly written and cannot be finished: the connection closes"
    GONE = "the client left, or the server answered in the app's place"


class Body(Enum):
    """Where the request body is, as the app reads it."""

    EMPTY = "no body: one empty final message still to hand over"
    STREAMING = "chunks come from the connection"
    READ = "the app has had the whole body"


_R = Response
_RESPONSE_MOVES: dict[Response, frozenset[Response]] = {
    # The server's own 500 goes from IDLE or STARTED through SENDING.
    _R.IDLE: frozenset({_R.STARTED, _R.SENDING, _R.GONE}),
    _R.STARTED: frozenset({_R.SENDING, _R.BROKEN, _R.GONE}),
    _R.SENDING: frozenset({_R.COMPLETE, _R.BROKEN, _R.GONE}),
    # A disconnect after completion changes nothing: the response is out whole.
    _R.COMPLETE: frozenset(),
    _R.BROKEN: frozenset({_R.GONE}),
    _R.GONE: frozenset(),
}
_BODY_MOVES: dict[Body, frozenset[Body]] = {
    Body.EMPTY: frozenset({Body.READ}),
    Body.STREAMING: frozenset({Body.READ}),
    Body.READ: frozenset(),
}


class ExchangeState:
    """The response and request-body states of one exchange, and whether the ASGI call
    returned. The only writer of all three is its `RequestCycle`."""

    __slots__ = ("body", "response", "returned")

    def __init__(self, *, has_body: bool) -> None:
        self.response = Response.IDLE
        self.body = Body.STREAMING if has_body else Body.EMPTY
        self.returned = False

    def can(self, to: Response) -> bool:
        """Whether the response may move to `to` from where it is."""
        return to in _RESPONSE_MOVES[self.response]

    def move(self, to: Response) -> None:
        """Move the response to `to`; `PhaseError` if the table forbids it."""
        if to not in _RESPONSE_MOVES[self.response]:
            raise PhaseError(f"response cannot go from {self.response.name} to {to.name}")
        self.response = to

    def body_read(self) -> None:
        """The app has had the final body message."""
        if Body.READ not in _BODY_MOVES[self.body]:
            raise PhaseError(f"request body cannot go from {self.body.name} to READ")
        self.body = Body.READ

    @property
    def done(self) -> bool:
        """The connection may stop waiting: the response is complete or the call ended."""
        return self.response is Response.COMPLETE or self.returned
