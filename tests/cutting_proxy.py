"""An ssh ProxyCommand that drops the connection after LIMIT bytes sent: a link cut mid-transfer.

Usage (in an ssh config): ``ProxyCommand python cutting_proxy.py %h %p LIMIT``
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _to_stdout(connection: socket.socket) -> None:
    while data := connection.recv(65536):
        os.write(1, data)
    os._exit(0)


def main(host: str, port: str, limit: str) -> None:
    connection = socket.create_connection((host, int(port)))
    threading.Thread(target=_to_stdout, args=(connection,), daemon=True).start()
    budget = int(limit)
    while data := os.read(0, 65536):
        if len(data) > budget:
            connection.sendall(data[:budget])
            os._exit(1)  # no goodbye: the link is simply gone
        connection.sendall(data)
        budget -= len(data)


if __name__ == "__main__":
    main(*sys.argv[1:4])
