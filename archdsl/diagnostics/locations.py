"""Where a diagnostic is, as CI tools want it: a path relative to the
repository root (the nearest folder above the file that holds ``.git``),
percent-encoded where a URI is wanted, a ``file://`` URI for a file outside
any repository, and a fingerprint that survives edits elsewhere in the file.

SARIF 2.1.0 §3.4 (artifactLocation.uri), GitHub's workflow commands and
GitLab's Code Quality report all resolve relative paths against the
repository root, not against the folder the tool ran in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..source import SourceFile
from .model import Diagnostic

#: The name of a file that did not come from the file system (``check -``).
STDIN = "<stdin>"


@functools.lru_cache(maxsize=256)
def repository_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding ``.git`` (a folder,
    or the file a worktree or submodule has)."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


@dataclass(frozen=True)
class Location:
    """A file as CI tools name it."""

    #: Relative to the repository root (POSIX separators), or None outside one.
    relative: str | None
    #: Absolute, for files outside a repository.
    absolute: Path | None

    @property
    def path(self) -> str:
        """For GitHub annotations and GitLab: the repository-relative path,
        else the absolute one."""
        if self.relative is not None:
            return self.relative
        return self.absolute.as_posix() if self.absolute is not None else STDIN

    @property
    def uri(self) -> str:
        """For SARIF: a percent-encoded relative reference, or a file:// URI."""
        if self.relative is not None:
            return quote(self.relative, safe="/")
        return self.absolute.as_uri() if self.absolute is not None else quote(STDIN)


@functools.lru_cache(maxsize=1024)
def locate(name: str) -> Location:
    """The CI location of a span's file as archdsl printed it (as typed on
    the command line, or as an import resolved it)."""
    if name == STDIN or name.startswith("<"):
        return Location(None, None)
    absolute = Path(name).resolve()
    root = repository_root(absolute.parent)
    if root is None:
        return Location(None, absolute)
    return Location(absolute.relative_to(root).as_posix(), absolute)


def fingerprints(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile]) -> list[str]:
    """A stable identity per diagnostic: the code, the repository path and
    the text of the line it points at (not its number, so an edit above it
    keeps the identity), with an occurrence count for identical lines."""
    import hashlib  # here: its OpenSSL library is slow to load, and only SARIF and GitLab reports hash

    seen: dict[str, int] = {}
    out = []
    for d in diagnostics:
        if d.span is None:
            key = f"{d.code}\0\0{d.message}"
        else:
            source = sources.get(d.span.file)
            text = source.line_text(d.span.line).strip() if source is not None else str(d.span.line)
            key = f"{d.code}\0{locate(d.span.file).path}\0{text}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        seen[digest] = seen.get(digest, 0) + 1
        out.append(f"{digest}:{seen[digest]}")
    return out
