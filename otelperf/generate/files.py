"""The one write / ``--check`` implementation behind ``otelperf rules`` and ``otelperf dashboards``.

Generators hand over ``{file name: text}``; this module compares that with a directory or
writes it there.  Writing touches only files whose text changed, so an unchanged tree keeps its
timestamps and the output is the same on every run.  Errors are :class:`UserError` naming the
``--out`` directory; the commands print them as one line with exit status 2.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     before = compare(d, {"a.yml": "x\\n"})
...     written = write(d, {"a.yml": "x\\n"})
...     after = compare(d, {"a.yml": "x\\n"})
>>> [p.name for p in before.stale], [p.name for p in written], after.current
(['a.yml'], ['a.yml'], True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from otelperf.errors import UserError


@dataclass(frozen=True)
class Comparison:
    """What ``--check`` found: generated files missing or different, and strangers.

    ``unknown`` holds files that match the caller's pattern but are not generated (an old
    dashboard left behind after a rename, say); it is empty when no pattern was given.
    """

    stale: tuple[Path, ...]
    unknown: tuple[Path, ...]

    @property
    def current(self) -> bool:
        """True when the directory holds exactly the generated text."""
        return not self.stale and not self.unknown


def output_dir(out: str | Path) -> Path:
    """``--out`` as a Path; a UserError if it exists and is not a directory."""
    path = Path(out)
    try:
        os.fsencode(path)  # a lone surrogate or a NUL: no file system can hold the name
        if "\0" in str(path):
            raise ValueError("embedded null byte")
    except ValueError as exc:
        raise UserError(f"--out={str(out)!r:.200}: unusable: {exc}") from None
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"--out={str(out)!r} is not a directory")
    except OSError as exc:  # a name too long, a permission denied on the way
        raise UserError(f"--out={str(out)!r:.200}: unusable: {exc.strerror or exc}") from None
    return path


def _read(path: Path) -> bytes | None:
    # Bytes, not text: a file that is not UTF-8 (or not ours at all) is simply stale.
    try:
        return path.read_bytes()
    except OSError:
        return None


def compare(
    out: str | Path, files: Mapping[str, str], unknown_glob: str | None = None
) -> Comparison:
    """Compare ``files`` with the directory ``out``, writing nothing.

    A generated file is stale when it is missing, unreadable or holds other text; with
    ``unknown_glob`` (e.g. ``"*.json"``) files matching it that are not generated are reported
    too.  Both lists are in file-name order.
    """
    directory = output_dir(out)
    stale = tuple(
        directory / name
        for name in sorted(files)
        if _read(directory / name) != files[name].encode("utf-8")
    )
    unknown: tuple[Path, ...] = ()
    if unknown_glob is not None and directory.is_dir():
        unknown = tuple(sorted(p for p in directory.glob(unknown_glob) if p.name not in files))
    return Comparison(stale, unknown)


def write(out: str | Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` into ``out`` (created if needed), only those whose text differs.

    Returns the paths written, in file-name order.  Any OS error is a UserError naming ``out``.
    """
    directory = output_dir(out)
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            path = directory / name
            if _read(path) != files[name].encode("utf-8"):
                path.write_text(files[name], encoding="utf-8")
                written.append(path)
    except OSError as exc:
        raise UserError(f"--out={str(out)!r:.200}: cannot write: {exc.strerror or exc}") from None
    return written
