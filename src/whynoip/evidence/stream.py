"""Bytes to lines, safely: the one place where evidence is decoded.

Evidence is read as a stream, line by line, so a 1 GB log costs no more memory than its
longest line. Whatever is odd about the bytes is noted, once per file, instead of failing:
bytes that are not UTF-8 (replaced), lines over `MAX_LINE` characters (cut), a compressed
stream that ends early (truncated), an I/O error. A private key block is blanked while
reading, so no parser ever holds it.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

HEAD_BYTES = 64 * 1024
MAX_LINE = 1 << 20  # characters; longer lines are cut (and noted)
KEY_MASK = "[private key redacted]"

# Errors a damaged stream raises while being read.
STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError, ValueError)

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(slots=True)
class ReadNotes:
    """What reading one stream of text noticed."""

    lines: int = 0
    replaced_line: int | None = None  # first line with bytes that were not UTF-8
    cut_lines: int = 0
    first_cut: int | None = None
    keys: int = 0  # private key blocks blanked
    error: str | None = None  # the stream broke off: why
    error_line: int | None = None
    reopened: bool = False  # a once-only stream was asked for twice

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = describe_error(exc)
            self.error_line = self.lines


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    if (isinstance(exc, EOFError) or "end-of-stream" in text or "ended before" in text
            or "unexpected end of data" in text
            # a tar header block read short, or not at all, where one was due: the data ends
            or text in ("empty header", "truncated header")):
        return "the data ends early (truncated file or archive?)"
    if isinstance(exc, (zlib.error, lzma.LZMAError)) or "CRC" in str(exc) or "Not a gzipped" in str(exc):
        return f"the compressed data is corrupt ({exc})"
    if isinstance(exc, tarfile.TarError):
        return f"the archive is damaged ({exc})"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return f"cannot read: {exc}"


def kind_of(head: bytes) -> str:
    """What the first bytes of a stream say it is: pcap, pcapng, gzip, xz, bz2, zstd, zip,
    tar, empty, binary, utf-16 or text."""
    if not head:
        return "empty"
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    sample = head[:8192]
    if b"\x00" in sample:
        return "binary"
    # Mostly control bytes (not tab/newline/CR/ESC/formfeed) is not text either.
    ctrl = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    if ctrl > len(sample) // 10:
        return "binary"
    return "text"


def decompressed_head(kind: str, head: bytes, n: int = 4096) -> bytes:
    """The first decompressed bytes of a compressed head (enough to look for a tar header)."""
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=31).decompress(head, n)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(head, n)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(head)[:n]
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return b""
    return b""


def decompressing(kind: str, fobj: BinaryIO) -> BinaryIO:
    import gzip
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fobj, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(fobj, "rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(fobj, "rb")  # type: ignore[return-value]
    raise ValueError(kind)


class Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read: gives them again, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO | None):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._rest is None:
            return 0
        data = self._rest.read(len(b))
        if not data:
            return 0
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._rest is not None:
            try:
                self._rest.close()
            except STREAM_ERRORS:
                pass
        super().close()


class Guarded(io.RawIOBase):
    """A stream that ends instead of raising when the data breaks off; the reason goes to
    `notes`. Binary sections (pcaps) are handed to their parser through one of these."""

    def __init__(self, inner: BinaryIO, notes: ReadNotes):
        self._inner = inner
        self.notes = notes

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except STREAM_ERRORS as e:
            self.notes.fail(e)
            return 0
        if not data:
            return 0
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        except STREAM_ERRORS:
            pass
        super().close()


def binary_reader(opener: Callable[[], BinaryIO], notes: ReadNotes) -> BinaryIO:
    try:
        inner = opener()
    except STREAM_ERRORS as e:
        notes.fail(e)
        inner = io.BytesIO(b"")
    return io.BufferedReader(Guarded(inner, notes), buffer_size=1 << 16)  # type: ignore[arg-type]


CHUNK = 256 * 1024  # characters decoded at a time


def text_lines(opener: Callable[[], BinaryIO], notes: ReadNotes, encoding: str = "utf-8") -> Iterator[str]:
    """The lines of a byte stream, without line ends (LF or CRLF). Never raises for bad
    data: see `ReadNotes`. Text is decoded and split a chunk at a time; only a chunk with
    something odd in it (CR, U+FFFD, a private key, a very long line) is looked at line by
    line."""
    try:
        raw = opener()
    except STREAM_ERRORS as e:
        notes.fail(e)
        return
    text = io.TextIOWrapper(io.BufferedReader(Guarded(raw, notes), buffer_size=1 << 16),  # type: ignore[arg-type]
                            encoding=encoding, errors="replace", newline="\n")
    n = notes.lines
    carry = ""
    skipping = False  # inside an over-long line, after its first MAX_LINE characters
    state = [False]  # inside a private key block
    try:
        while True:
            chunk = text.read(CHUNK)
            if not chunk:
                break
            if skipping:
                i = chunk.find("\n")
                if i < 0:
                    continue
                chunk = chunk[i + 1:]
                skipping = False
            if carry:
                chunk = carry + chunk
            lines = chunk.split("\n")
            carry = lines.pop()
            cut_last = False
            if len(carry) >= MAX_LINE:
                lines.append(carry)
                carry = ""
                skipping = cut_last = True
            if not lines:
                continue
            if (len(chunk) < MAX_LINE and not state[0] and "\r" not in chunk and "PRIVATE KEY-----" not in chunk
                    and (notes.replaced_line is not None or "\ufffd" not in chunk)):
                n += len(lines)
                notes.lines = n
                yield from lines
                continue
            for line in _odd_lines(lines, n, notes, state, cut_last):
                n += 1
                notes.lines = n
                yield line
        if carry:  # the last line, without a line end
            for line in _odd_lines([carry], n, notes, state, False):
                n += 1
                notes.lines = n
                yield line
    except STREAM_ERRORS as e:  # decoding machinery failing on a broken stream
        notes.fail(e)
    finally:
        notes.lines = n
        if notes.error is not None:
            notes.error_line = n  # the break was met reading ahead: it is after the last line
        try:
            text.close()
        except STREAM_ERRORS:
            pass


def _odd_lines(lines: list[str], n: int, notes: ReadNotes, state: list[bool], cut_last: bool) -> Iterator[str]:
    last = len(lines) - 1
    for i, line in enumerate(lines):
        num = n + i + 1
        if line and line[-1] == "\r":
            line = line[:-1]
        if len(line) > MAX_LINE or (cut_last and i == last):
            line = line[:MAX_LINE]
            notes.cut_lines += 1
            if notes.first_cut is None:
                notes.first_cut = num
        if notes.replaced_line is None and "\ufffd" in line:
            notes.replaced_line = num
        if state[0]:
            if "-----END" in line:
                state[0] = False
            else:
                line = KEY_MASK
        elif "PRIVATE KEY-----" in line and "-----BEGIN" in line:
            state[0] = True
            notes.keys += 1
        yield line


def blank_keys(lines: list[str]) -> int:
    """Blank private key blocks in lines already in memory; returns how many."""
    in_key = False
    found = 0
    for i, line in enumerate(lines):
        if in_key:
            if "-----END" in line:
                in_key = False
            else:
                lines[i] = KEY_MASK
        elif "PRIVATE KEY-----" in line and "-----BEGIN" in line:
            in_key = True
            found += 1
    return found
