"""The TLS the listeners serve, swapped on reload without dropping them.

The listening socket keeps one SSL context for good (asyncio and uvloop take it when they
start serving); its SNI callback, which OpenSSL calls on every handshake, SNI or not, hands
each new connection the newest context. A connection already open keeps the certificate it
was made with until it closes."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from failover.config.tls import Certificate, Material, server_context

log = logging.getLogger(__name__)


class ServingTls:
    def __init__(self, material: Material, shown: Callable[[Certificate], None]) -> None:
        """``shown`` is told the certificate now served, at start and on every swap (the
        expiry metric)."""
        self.material = material
        self._shown = shown
        self._current = server_context(material)
        self.front = server_context(material)
        """The listening sockets' context."""
        self.front.sni_callback = self._hand_over
        self._show()

    def _hand_over(self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None,
                   _front: ssl.SSLContext) -> None:
        connection.context = self._current

    def update(self, material: Material) -> bool:
        """Serve ``material`` to new connections from now on; False when it is what is
        served already. Its files were checked when the config was loaded, so a bad
        certificate never gets this far: the reload is refused and the old one stays."""
        if material == self.material:
            return False
        current = server_context(material)
        # Whether a client certificate is asked for is set when a connection is made, from
        # the listening context: it follows a client CA added or removed.
        self.front.verify_mode = current.verify_mode
        self._current, self.material = current, material
        self._show()
        return True

    def _show(self) -> None:
        certificate = self.material.certificate
        if certificate is not None:
            self._shown(certificate)
            log.info("serving TLS certificate %s (%s), expires %s", certificate.subject,
                     certificate.fingerprint, certificate.not_after.isoformat())
