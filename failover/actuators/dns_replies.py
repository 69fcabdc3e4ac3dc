"""What a DNS server's reply to an update means: TSIG errors and refusals, with what usually
causes them, for error messages an operator can act on."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.rcode
import dns.tsig
import dns.update

from failover.actuators.base import PermanentActuatorError
from failover.config.addresses import Endpoint

TSIG_ERRORS: tuple[tuple[type[dns.tsig.PeerError], str, str], ...] = (
    # knot 3.2 also answers BADKEY when it knows the key but its ACL does not let the key
    # update this zone, name or type.
    (dns.tsig.PeerBadKey, "BADKEY", "the server does not know this key name and algorithm,"
                                    " or its ACL does not let this key update this name"),
    (dns.tsig.PeerBadSignature, "BADSIG", "wrong secret, or a different algorithm"),
    (dns.tsig.PeerBadTime, "BADTIME", "the clocks differ by more than the 300 s fudge"),
    (dns.tsig.PeerBadTruncation, "BADTRUNC", "the server refused the truncated MAC"),
)
"""TSIG errors the server reports (RFC 8945 5.2), with what usually causes them."""

UPDATE_HINTS: dict[dns.rcode.Rcode, str] = {
    dns.rcode.NOTAUTH: "the server does not serve the zone, or its ACL does not allow"
                       " updates signed with this key",
    dns.rcode.REFUSED: "the server's policy refuses updates from this client or key",
    dns.rcode.NOTZONE: "the name is outside the zone",
    dns.rcode.NOTIMP: "the server does not implement dynamic updates",
}


def authenticate(actuator: str, server: Endpoint, key: dns.tsig.Key, wire: bytes,
                 update: dns.update.UpdateMessage, rcode: dns.rcode.Rcode) -> None:
    """Raise PermanentActuatorError, saying why, unless the reply ``wire`` authenticates
    with ``key`` (an unsigned error reply passes: its rcode says what went wrong)."""
    prefix = f"{actuator}: {server} rejected TSIG key {key.name.to_text(True)}"
    try:
        dns.message.from_wire(wire, keyring=key, request_mac=update.mac)
    except dns.tsig.PeerError as exc:
        code, why = next(((c, w) for kind, c, w in TSIG_ERRORS if isinstance(exc, kind)),
                         (type(exc).__name__, str(exc)))
        msg = f"{prefix}: {code} ({why}; rcode {dns.rcode.to_text(rcode)})"
        raise PermanentActuatorError(msg) from exc
    except dns.exception.FormError as exc:
        if rcode != dns.rcode.NOERROR:
            return  # an unsigned error reply: the rcode says what went wrong
        msg = f"{actuator}: {server} sent an unsigned success reply to a signed update"
        raise PermanentActuatorError(msg) from exc
    except (dns.tsig.BadSignature, dns.message.UnknownTSIGKey) as exc:
        msg = (f"{actuator}: the reply from {server} does not authenticate with key "
               f"{key.name.to_text(True)}: {type(exc).__name__}")
        raise PermanentActuatorError(msg) from exc
