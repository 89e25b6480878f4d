"""The state table of one exchange: the moves the server makes, and the ones it refuses."""

from __future__ import annotations

import pytest

from asgi_bg.server.phase import Body, ExchangeState, PhaseError, Response


def test_a_response_goes_idle_started_sending_complete() -> None:
    state = ExchangeState(has_body=False)
    for phase in (Response.STARTED, Response.SENDING, Response.COMPLETE):
        assert not state.done
        state.move(phase)
    assert state.done  # complete: the connection may move on before the call returns


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], Response.COMPLETE),  # nothing written yet
        ([Response.STARTED, Response.SENDING, Response.COMPLETE], Response.GONE),
        ([Response.STARTED, Response.SENDING, Response.COMPLETE], Response.STARTED),
        ([Response.GONE], Response.STARTED),
        ([Response.STARTED, Response.BROKEN], Response.COMPLETE),
    ],
)
def test_an_illegal_move_is_a_clear_error(path: list[Response], illegal: Response) -> None:
    state = ExchangeState(has_body=True)
    for phase in path:
        state.move(phase)
    with pytest.raises(PhaseError, match=f"response cannot go from .* to {illegal.name}"):
        state.move(illegal)


def test_the_body_is_read_once() -> None:
    state = ExchangeState(has_body=True)
    assert state.body is Body.STREAMING
    state.body_read()
    with pytest.raises(PhaseError, match="request body cannot go from READ to READ"):
        state.body_read()


def test_a_call_that_returned_is_done_whatever_its_response() -> None:
    state = ExchangeState(has_body=False)
    state.move(Response.GONE)
    assert not state.done  # the client left, but the call still runs
    state.returned = True
    assert state.done
