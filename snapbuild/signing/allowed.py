"""git's allowed-signers file (``gpg.ssh.allowedSignersFile``): which keys may sign, as whom, for what, and when.

One signer per line, as ssh-keygen(1) ALLOWED SIGNERS reads it:
``PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY [COMMENT]``; ``#`` comments and
blank lines are skipped. PRINCIPALS is a comma-separated list (quoted if it
holds spaces); OPTIONS are ``namespaces="PATTERN-LIST"``,
``valid-after="TIME"``, ``valid-before="TIME"`` and ``cert-authority``. A
TIME is ``YYYYMMDD[HHMM[SS]]``, in UTC when it ends in ``Z`` or ``UTC``,
else in local time, as ssh-keygen reads it. Unlike ssh-keygen, which stops
at the first bad line, a bad line is an error here, so a typo never hides
the signers after it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UsageError
from ..manifest import TIMESTAMP_FORMAT
from .sshsig import SIGNATURE_ALGORITHMS, PublicKey, split_openssh

#: The argument a broken file is reported against (the CLI names its flag there).
ARGUMENT = "allowed signers file"
_TIME_FORMATS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed-signers file.

    Attributes:
        line: its line number.
        principals: the principals as written (a comma-separated pattern list).
        key_type: the key's type name.
        key_blob: the key in SSH wire form.
        namespaces: the ``namespaces`` pattern list, or None (every namespace).
        valid_after: Unix seconds before which the key is not valid, or None.
        valid_before: Unix seconds after which it is no longer valid, or None.
        cert_authority: the key certifies other keys rather than signing (never matches a plain key).
    """

    line: int
    principals: str
    key_type: str
    key_blob: bytes
    namespaces: str | None = None
    valid_after: int | None = None
    valid_before: int | None = None
    cert_authority: bool = False

    def refusal(self, namespace: str, when: int) -> str | None:
        """Why this line does not admit its key for ``namespace`` at Unix time ``when``; None if it does."""
        if self.namespaces is not None and match_pattern_list(namespace, self.namespaces) != 1:
            return f"line {self.line} admits it only for namespaces {self.namespaces!r}, not {namespace!r}"
        if self.valid_after is not None and when < self.valid_after:
            return f"line {self.line} admits it only from {_utc(self.valid_after)} (signed {_utc(when)})"
        if self.valid_before is not None and when > self.valid_before:
            return f"line {self.line} admits it only until {_utc(self.valid_before)} (signed {_utc(when)})"
        return None


@dataclass(frozen=True)
class SignerMatch:
    """What an allowed-signers file says about one key.

    Attributes:
        principals: the principals of every line that admits the key (empty: none does).
        refusals: why each line that lists the key without admitting it does not.
    """

    principals: tuple[str, ...]
    refusals: tuple[str, ...]


@dataclass(frozen=True)
class AllowedSigners:
    """A parsed allowed-signers file."""

    path: Path
    signers: tuple[AllowedSigner, ...]

    def match(self, key: PublicKey, namespace: str, when: int) -> SignerMatch:
        """Who ``key`` signs as in ``namespace`` at Unix time ``when`` (git passes the commit's time).

        A ``cert-authority`` line never admits a plain key: certificates are not verified here.
        """
        principals: list[str] = []
        refusals: list[str] = []
        for signer in self.signers:
            if signer.cert_authority or signer.key_blob != key.blob:
                continue
            refusal = signer.refusal(namespace, when)
            if refusal is None:
                principals.append(signer.principals)
            else:
                refusals.append(refusal)
        return SignerMatch(tuple(principals), tuple(refusals))


def load_allowed_signers(path: str | os.PathLike[str]) -> AllowedSigners:
    """Read and parse an allowed-signers file.

    Raises:
        UsageError: the file cannot be read, or a line is malformed (the message names the line).
    """
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UsageError(f"{ARGUMENT} {where}: {reason}", argument=ARGUMENT) from None
    return parse_allowed_signers(text, where)


def parse_allowed_signers(text: str, path: Path) -> AllowedSigners:
    """Parse the text of an allowed-signers file read from ``path``.

    Raises:
        UsageError: a line is malformed (the message names the line).
    """
    signers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip(" \t\r\n")
        if not line or line.startswith("#"):
            continue
        try:
            signers.append(_parse_line(number, line))
        except ValueError as error:
            raise UsageError(f"{ARGUMENT} {path} line {number}: {error}", argument=ARGUMENT) from None
    return AllowedSigners(path, tuple(signers))


def _parse_line(number: int, line: str) -> AllowedSigner:
    principals, rest = _take_principals(line)
    if not rest:
        raise ValueError("expected 'PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY'")
    options: dict[str, object] = {}
    if not _looks_like_key(rest):
        options, rest = _take_options(rest)
        if not rest:
            raise ValueError("missing key")
    key_type, key_blob = _take_key(rest)
    after, before = options.get("valid_after"), options.get("valid_before")
    if isinstance(after, int) and isinstance(before, int) and before <= after:
        raise ValueError('"valid-before" time is before "valid-after"')
    return AllowedSigner(number, principals, key_type, key_blob, **options)  # type: ignore[arg-type]


def _take_principals(line: str) -> tuple[str, str]:
    """The principals (quoted or not) and the rest of the line."""
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            raise ValueError("principals: missing end quote")
        return line[1:end], line[end + 1 :].lstrip(" \t")
    head = re.split(r"[ \t]", line, maxsplit=1)[0]
    return head, line[len(head) :].lstrip(" \t")


def _looks_like_key(text: str) -> bool:
    """True when ``text`` starts with a key type rather than options (option names never look like one)."""
    word = text.split(None, 1)[0]
    return word in SIGNATURE_ALGORITHMS or bool(re.match(r"(ssh|ecdsa|sk|rsa)-[A-Za-z0-9@.-]+$", word))


def _take_options(text: str) -> tuple[dict[str, object], str]:
    """Parse ``option[,option...]`` up to the first unquoted blank, as ssh-keygen's sshsigopt_parse."""
    options: dict[str, object] = {}
    at = 0
    while at < len(text) and text[at] not in " \t":
        lower = text[at:].lower()
        if lower.startswith("cert-authority"):
            options["cert_authority"] = True
            at += len("cert-authority")
        else:
            for name in ("namespaces", "valid-after", "valid-before"):
                if lower.startswith(name + "="):
                    key = name.replace("-", "_")
                    if key in options:
                        raise ValueError(f'multiple "{name}" clauses')
                    value, at = _dequote(text, at + len(name) + 1)
                    options[key] = value if name == "namespaces" else _parse_time(name, value)
                    break
        if at >= len(text) or text[at] in " \t":
            break
        if text[at] != ",":
            raise ValueError(f"unknown option at {text[at:].split(None, 1)[0]!r}")
        at += 1
        if at >= len(text):
            raise ValueError("unexpected end of options")
    return options, text[at:].lstrip(" \t")


def _dequote(text: str, at: int) -> tuple[str, int]:
    """A double-quoted value starting at ``at`` (``\\"`` escapes a quote) and the index after it."""
    if at >= len(text) or text[at] != '"':
        raise ValueError("option value: missing start quote")
    value = []
    at += 1
    while at < len(text) and text[at] != '"':
        if text[at] == "\\" and text[at + 1 : at + 2] == '"':
            at += 1
        value.append(text[at])
        at += 1
    if at >= len(text):
        raise ValueError("option value: missing end quote")
    return "".join(value), at + 1


def _parse_time(name: str, value: str) -> int:
    """ssh-keygen's absolute time: ``YYYYMMDD[HHMM[SS]]``, UTC with a ``Z``/``UTC`` suffix, else local time."""
    digits, utc = value, False
    for suffix in ("Z", "UTC"):
        if len(value) > len(suffix) and value.upper().endswith(suffix):
            digits, utc = value[: -len(suffix)], True
            break
    form = _TIME_FORMATS.get(len(digits))
    try:
        if form is None or not digits.isdigit():
            raise ValueError
        moment = datetime.strptime(digits, form)
        seconds = int((moment.replace(tzinfo=timezone.utc) if utc else moment).timestamp())
    except (ValueError, OverflowError, OSError):
        raise ValueError(f'invalid "{name}" time {value!r} (expected YYYYMMDD[HHMM[SS]][Z])') from None
    if seconds <= 0:
        raise ValueError(f'invalid "{name}" time {value!r}')
    return seconds


def _take_key(text: str) -> tuple[str, bytes]:
    """``KEYTYPE BASE64 [COMMENT]``: the type and the blob; a type snapbuild checks must also parse as a key."""
    key_type, blob = split_openssh(text)
    if key_type in SIGNATURE_ALGORITHMS:
        PublicKey.from_openssh(text)
    return key_type, blob


def match_pattern_list(value: str, patterns: str) -> int:
    """OpenSSH's match_pattern_list: 1 if a pattern matches, -1 if a ``!``-negated one does, else 0.

    Patterns are comma-separated; ``*`` matches any run of characters, ``?`` any one.
    """
    positive = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in body)
        if re.fullmatch(regex, value, flags=re.DOTALL):
            if negated:
                return -1
            positive = 1
    return positive


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(TIMESTAMP_FORMAT)
