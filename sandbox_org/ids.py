"""Salesforce record ids: 15-char case-sensitive base 62 plus the 3-char case-safe checksum.

The checksum is the algorithm of salesforce-wire-shapes.md §8 (verified there against
official example ids): for each 5-char chunk, a bit per uppercase letter, looked up in
``A..Z0..5``.
"""

from __future__ import annotations

import threading

_LUT = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# The org id of every sandbox org (an 18-char 00D id; the token prefix uses its 15 chars).
ORG_ID = "00D5g000004SbxREAS"


def checksum(id15: str) -> str:
    """The 3-char case-safe suffix of a 15-char id."""
    suffix = []
    for i in range(3):
        bits = 0
        for j in range(5):
            c = id15[i * 5 + j]
            if "A" <= c <= "Z":
                bits |= 1 << j
        suffix.append(_LUT[bits])
    return "".join(suffix)


def to18(id15: str) -> str:
    return id15 + checksum(id15)


def normalize(value: str) -> str | None:
    """The 18-char form of a 15- or 18-char id, or None when it is not a well-formed id.

    An 18-char id whose suffix does not match its first 15 chars is not well formed; the
    suffix is matched case-insensitively as Salesforce does (the suffix only encodes case).
    """
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        return None
    if len(value) == 15:
        return to18(value)
    if len(value) == 18:
        expected = checksum(value[:15])
        if value[15:].upper() != expected:
            return None
        return value[:15] + expected
    return None


class IdFactory:
    """Hands out sequential ids per key prefix (thread-safe)."""

    def __init__(self, pod: str = "5g") -> None:
        self._pod = pod
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def seed(self, prefix: str, counter: int) -> None:
        with self._lock:
            self._next[prefix] = max(self._next.get(prefix, 1), counter)

    def new(self, prefix: str) -> str:
        with self._lock:
            n = self._next.get(prefix, 1)
            self._next[prefix] = n + 1
        return self.make(prefix, n)

    def make(self, prefix: str, n: int) -> str:
        digits = []
        for _ in range(10):
            n, r = divmod(n, 62)
            digits.append(_B62[r])
        body = self._pod + "".join(reversed(digits))
        return to18(prefix + body)

    @staticmethod
    def counter_of(record_id: str) -> int:
        """The sequence number encoded in an id made by ``make`` (to resume after a restart)."""
        n = 0
        for c in record_id[5:15]:
            n = n * 62 + _B62.index(c)
        return n
