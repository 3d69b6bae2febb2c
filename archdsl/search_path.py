"""Where imports may come from (docs/language.md "Imports", docs/security.md).

An import is confined to the *project root* of the top file (the nearest
folder at or above it holding ``pyproject.toml`` or ``.git``; else the top
file's folder) and to the *library folders*: the standard block library
(``std/``: the zoo's ``models/blocks``, shipped in the wheel as
``archdsl/zoo/blocks``), the folders of ``ARCHDSL_PATH`` (separated by
``os.pathsep``) and those of ``[tool.archdsl] paths``.  Paths are compared
after following symlinks, so a link inside the project that points out of
it is outside too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The prefix of an import from the standard block library.
STD_PREFIX = "std/"
#: A folder holding one of these is a project root.
ROOT_MARKERS = ("pyproject.toml", ".git")
#: The environment variable of extra library folders.
PATH_VARIABLE = "ARCHDSL_PATH"


def std_directory() -> Path | None:
    """The standard block library: the wheel's ``archdsl/zoo/blocks``, or a
    source checkout's ``models/blocks``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "zoo" / "blocks", package.parent / "models" / "blocks"):
        if candidate.is_dir():
            return candidate
    return None


def project_root(directory: Path) -> Path:
    """The nearest folder at or above ``directory`` with a root marker, or ``directory``."""
    for folder in (directory, *directory.parents):
        if any(os.path.lexists(folder / marker) for marker in ROOT_MARKERS):
            return folder
    return directory


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class ImportPolicy:
    """The folders imports may read from; all resolved."""

    root: Path
    library: tuple[Path, ...] = ()
    std: Path | None = None

    def allows(self, target: Path) -> bool:
        folders = (self.root, *self.library, *((self.std,) if self.std else ()))
        return any(_inside(target, folder) for folder in folders)


def environment_paths() -> tuple[Path, ...]:
    raw = os.environ.get(PATH_VARIABLE, "")
    return tuple(Path(part).resolve() for part in raw.split(os.pathsep) if part)


def import_policy(directory: Path, *, root: Path | None = None,
                  paths: tuple[Path, ...] | None = None) -> ImportPolicy:
    """The policy for a top file in ``directory``: its project root (or
    ``root``), and the library folders ``paths`` (default: ``ARCHDSL_PATH``
    and the configuration's ``paths``; a broken configuration is reported
    by the command that reads it, and adds none here)."""
    directory = directory.resolve()
    if paths is None:
        from .config import ConfigError, find_config

        try:
            configured = find_config(directory / "_").paths
        except ConfigError:
            configured = ()
        paths = (*environment_paths(), *configured)
    return ImportPolicy(root=(root or project_root(directory)).resolve(),
                        library=tuple(p.resolve() for p in paths), std=std_directory())
