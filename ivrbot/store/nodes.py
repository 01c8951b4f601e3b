"""Which process a record belongs to, so a restart can tell the calls a crash cut short."""

from __future__ import annotations

import os
import secrets
import socket

_RUN = secrets.token_hex(4)  # this run of this process (a pid is reused, e.g. 1 in a container)


def this_node() -> str:
    """``host:pid:run`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_RUN}"


def node_alive(node: str) -> bool:
    """Whether the process ``node`` names may still be running: True for another host (it
    cannot be told from here); False for an empty or malformed node."""
    parts = node.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return False
    host, pid, run = parts
    if host != socket.gethostname():
        return True
    if int(pid) == os.getpid():
        return run == _RUN
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
