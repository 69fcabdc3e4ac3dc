"""Failed authentications per peer: past a few in a window, the peer's wrong tokens are
answered 429 until the window ends, cheaply (no audit line each, no log line each).

A right token is never held back, whoever presents it: the operator may share an address
with the attacker (a NAT, a bastion host), and operators are never locked out. What the
limit buys is a bounded cost per attacker and a loud record of the attack; what makes the
tokens unguessable is their length (docs/security.md)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FAILURES = 10
"""Wrong tokens a peer may present per window before it is answered 429."""
WINDOW = 60.0
"""Seconds."""
MAX_PEERS = 10_000
"""Peers remembered at once; the longest quiet is forgotten first, so a flood from many
addresses costs bounded memory."""


@dataclass
class _Peer:
    since: float
    failures: int = 0
    blocked_until: float = -math.inf
    refused: int = 0
    """429s answered since the block was logged."""


@dataclass(frozen=True)
class Blocked:
    """A peer that has just been limited."""

    failures: int
    left: float
    """Seconds the limit lasts from now."""
    refused: int
    """429s answered in the peer's last limit."""


class FailedAuth:
    def __init__(self, failures: int = FAILURES, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic, max_peers: int = MAX_PEERS,
                 ) -> None:
        self.failures = failures
        self.window = window
        self._clock = clock
        self._max_peers = max_peers
        self._peers: OrderedDict[str, _Peer] = OrderedDict()

    def retry_after(self, peer: str) -> float | None:
        """Seconds until ``peer`` may try again, while it is limited; None when it is not.
        A refusal while limited is counted for the next report."""
        state = self._peers.get(peer)
        if state is None:
            return None
        left = state.blocked_until - self._clock()
        if left <= 0:
            return None
        state.refused += 1
        return left

    def failed(self, peer: str) -> Blocked | None:
        """Count one wrong token from ``peer``; a Blocked when this one starts its limit
        (log and audit it: once per window)."""
        now = self._clock()
        state = self._peers.get(peer)
        if state is None or now - state.since >= self.window:
            # The last block's refusals are told with the next block, if there is one.
            state = _Peer(now, refused=0 if state is None else state.refused)
        self._peers[peer] = state
        self._peers.move_to_end(peer)
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
        state.failures += 1
        if state.failures == self.failures + 1:
            state.blocked_until = state.since + self.window
            refused, state.refused = state.refused, 0
            return Blocked(state.failures, state.blocked_until - now, refused)
        return None
