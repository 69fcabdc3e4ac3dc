"""What the tests' real servers share: free loopback ports, and a foreground process that can
be paused (SIGSTOP) and is always stopped, even while paused."""

from __future__ import annotations

import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port with nobody listening on 127.0.0.1 right now (a server started on it may
    still lose it to a race; the helpers that start servers retry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (DNS servers serve both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    msg = "no port free for both UDP and TCP on 127.0.0.1"
    raise RuntimeError(msg)


class Foreground:
    """Mixin for a server run in the foreground as ``self.process``."""

    process: subprocess.Popen[bytes]
    paused: bool

    def pause(self) -> None:
        """SIGSTOP: its sockets stay open, so clients connect or send and get no answer."""
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop_process(self) -> None:
        if self.process.poll() is None:
            if self.paused:
                self.resume()  # a stopped process would hold SIGTERM pending forever
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
