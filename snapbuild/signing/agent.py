"""A client of the ssh-agent protocol: which keys an agent holds, and a signature from one of them.

The protocol is a few length-prefixed messages over the agent's socket
(OpenSSH's PROTOCOL.agent); on Windows, OpenSSH's agent listens on a named
pipe, which Python opens as a file. Each request opens its own connection,
so an agent restarted between two snapshots is no problem.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .sshsig import WireReader, ssh_string

SSH_AGENT_FAILURE = 5
SSH2_AGENTC_REQUEST_IDENTITIES = 11
SSH2_AGENT_IDENTITIES_ANSWER = 12
SSH2_AGENTC_SIGN_REQUEST = 13
SSH2_AGENT_SIGN_RESPONSE = 14
#: Sign-request flag: an RSA key signs with SHA-512 (``rsa-sha2-512``), never SHA-1.
SSH_AGENT_RSA_SHA2_512 = 4
#: Where Windows' OpenSSH agent service listens.
WINDOWS_AGENT_PIPE = r"\\.\pipe\openssh-ssh-agent"
_PIPE_PREFIX = "\\\\.\\pipe\\"
#: No answer of the two requests used here comes near this; a larger length is garbage.
_MAX_MESSAGE = 1 << 20


class Agent:
    """An ssh-agent reached at ``address`` (a Unix socket path, or a Windows named pipe).

    Raises (every method):
        OSError: the agent cannot be reached or hung up.
        ValueError: it answered with a failure or something that is not the protocol.
    """

    def __init__(self, address: str, *, timeout: float = 120.0) -> None:
        self.address = address
        # An agent may ask its user to confirm (ssh-add -c) or a token to be touched before it signs.
        self.timeout = timeout

    def identities(self) -> list[bytes]:
        """The public keys (SSH wire form) the agent holds."""
        reader = self._request(SSH2_AGENTC_REQUEST_IDENTITIES, b"", SSH2_AGENT_IDENTITIES_ANSWER)
        blobs = []
        for _ in range(reader.u32()):
            blobs.append(reader.string())
            reader.string()  # the key's comment
        reader.end()
        return blobs

    def sign(self, key_blob: bytes, data: bytes, flags: int = 0) -> bytes:
        """The agent's signature of ``data`` with the key ``key_blob``, in SSH form (algorithm name, then bytes)."""
        reader = self._request(
            SSH2_AGENTC_SIGN_REQUEST,
            ssh_string(key_blob) + ssh_string(data) + struct.pack(">I", flags),
            SSH2_AGENT_SIGN_RESPONSE,
        )
        signature = reader.string()
        reader.end()
        return signature

    def _request(self, kind: int, body: bytes, expected: int) -> WireReader:
        message = bytes([kind]) + body
        with self._connect() as stream:
            _write_all(stream, struct.pack(">I", len(message)) + message)
            (size,) = struct.unpack(">I", _read_exact(stream, 4))
            if not 0 < size <= _MAX_MESSAGE:
                raise ValueError(f"the agent sent a message of {size} bytes")
            answer = _read_exact(stream, size)
        if answer[0] == SSH_AGENT_FAILURE:
            raise ValueError("the agent refused")
        if answer[0] != expected:
            raise ValueError(f"the agent answered with message type {answer[0]}, not {expected}")
        return WireReader(answer[1:])

    @contextmanager
    def _connect(self) -> Iterator[BinaryIO]:
        if self.address.startswith(_PIPE_PREFIX) or not hasattr(socket, "AF_UNIX"):
            with open(self.address, "r+b", buffering=0) as pipe:
                yield pipe
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            with sock.makefile("rwb", buffering=0) as stream:
                yield stream  # type: ignore[misc]


def _write_all(stream: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise OSError("the agent stopped reading")
        view = view[written:]


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise OSError("the agent closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
