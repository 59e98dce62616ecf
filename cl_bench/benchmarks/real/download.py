"""One HTTP download that survives dropped connections: written to ``<name>.partial``, resumed with a Range
request, checked against a known checksum, and renamed to ``<name>`` only when complete and verified
(docs/data-fetch.md)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 16
RETRIES = 5  # connection drops tolerated per file (each retry resumes where the last one stopped)


class DownloadError(Exception):
    """This URL cannot deliver the file (HTTP error, no connection, checksum mismatch); try the next source."""


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, md5: str | None = None, sha256: str | None = None, name: str | None = None) -> None:
    """Raise DownloadError unless every known checksum matches (``name``: the file's name in the message)."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            found = file_digest(path, algorithm)
            if found != expected.lower():
                raise DownloadError(f"checksum mismatch for {name or path.name} ({algorithm} {found}, "
                                    f"expected {expected})")


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def download(url: str, dest: Path, *, md5: str | None = None, sha256: str | None = None, size: int | None = None,
             progress=None, session=None, timeout: float = 30.0, log=lambda msg: None) -> Path:
    """Fetch ``url`` into ``dest``. A ``dest`` already there (a finished earlier download, or a file the user
    put there by hand) is only verified; a ``.partial`` left by an interrupted run is resumed."""
    import requests

    dest = Path(dest)
    if dest.is_file():
        try:
            verify(dest, md5, sha256)
        except DownloadError:
            dest.unlink()  # a wrong file must not block the download that replaces it
            raise
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    session = session or requests.Session()
    task = progress.add_task(dest.name, total=size) if progress is not None else None
    try:
        for attempt in range(RETRIES + 1):
            have = part.stat().st_size if part.is_file() else 0
            try:
                total = _transfer(session, url, part, have, timeout, progress, task)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                if attempt == RETRIES:
                    raise DownloadError(f"{url}: connection failed {RETRIES + 1} times ({_short(err)})") from None
                done = part.stat().st_size if part.is_file() else 0
                log(f"{dest.name}: connection dropped after {done:,} bytes; resuming")
                continue
            if total is None or part.stat().st_size == total:
                break
            log(f"{dest.name}: got {part.stat().st_size:,} of {total:,} bytes; resuming")
        else:
            raise DownloadError(f"{url}: the download stayed incomplete after {RETRIES + 1} tries")
        try:
            verify(part, md5, sha256, dest.name)
        except DownloadError:
            part.unlink()  # a complete but wrong file cannot be resumed into a right one
            raise
        os.replace(part, dest)
        return dest
    finally:
        if task is not None:
            progress.remove_task(task)


def _transfer(session, url: str, part: Path, have: int, timeout: float, progress, task) -> int | None:
    """One request appending to ``part`` from byte ``have``; returns the file's total size when the server
    says it."""
    headers = {"Accept-Encoding": "identity"}  # the bytes as published: checksums and offsets refer to them
    if have:
        headers["Range"] = f"bytes={have}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as r:
        if r.status_code == 416 and have:  # nothing left to send: the partial file may already be whole
            return _total_from_range(r.headers.get("Content-Range")) or have
        if r.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason or ''}".strip())
        if r.status_code == 206 and _range_start(r.headers.get("Content-Range")) != have:
            raise DownloadError(f"{url}: the server resumed at the wrong byte")
        if r.status_code == 200:
            have = 0  # the server ignored the Range header: start over
        # A dropped connection then ends the stream early instead of raising and losing the bytes buffered
        # so far; the size check in `download` notices the gap and resumes from what was written.
        r.raw.enforce_content_length = False
        length = r.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        if progress is not None:
            progress.update(task, total=total, completed=have)
        with open(part, "ab" if have else "wb") as f:
            for chunk in r.raw.stream(CHUNK, decode_content=False):
                f.write(chunk)
                if progress is not None:
                    progress.advance(task, len(chunk))
        return total


def _range_start(value: str | None) -> int | None:
    try:  # "bytes 100-199/200"
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _total_from_range(value: str | None) -> int | None:
    try:  # "bytes */200"
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__
