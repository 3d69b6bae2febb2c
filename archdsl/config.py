"""Project configuration: ``[tool.archdsl]`` in the nearest pyproject.toml.

```toml
[tool.archdsl]
select = ["E", "W", "I"]        # code prefixes to report (errors are always reported)
ignore = ["W202"]               # code prefixes to drop
strict = false                  # exit 1 on warnings too
paths = ["../shared/blocks"]    # library folders imports search (relative to this file)

[tool.archdsl.severity]         # re-grade warnings and info
W204 = "error"

[tool.archdsl.inputs]           # default input sizes by input name (batch excluded)
image = [3, 160, 160]

[[tool.archdsl.budgets]]        # upper bounds; "glob" limits a budget to some files
glob = "models/resnet*.cnn"
params = "30M"
macs = "5G"
peak_activation = "64M"
```
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Severity
from .diagnostics.codes import BY_CODE
from .graph import FIGURES
from .quantities import si_quantity


class ConfigError(Exception):
    """A configuration that cannot be used (a usage error, exit 2)."""


@dataclass(frozen=True)
class Budget:
    limits: dict[str, int | float]
    glob: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    select: tuple[str, ...] = ("E", "W", "I")
    ignore: tuple[str, ...] = ()
    strict: bool = False
    severity: dict[str, Severity] = field(default_factory=dict)
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    #: Library folders that imports search after the importing file's folder
    #: (and may read: they widen the import confinement, docs/security.md).
    paths: tuple[Path, ...] = ()

    def enabled(self, code: str) -> bool:
        """Errors always; warnings and info as select/ignore say."""
        if code.startswith("E"):
            return True
        return any(code.startswith(p) for p in self.select) and not any(code.startswith(p) for p in self.ignore)

    def severity_of(self, code: str, default: Severity) -> Severity:
        return default if code.startswith("E") else self.severity.get(code, default)

    def budgets_for(self, file: Path) -> list[Budget]:
        if not self.budgets:
            return []
        base = self.path.parent if self.path else Path.cwd()
        try:
            relative = file.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            relative = file.as_posix()
        return [b for b in self.budgets if b.glob is None or fnmatch.fnmatch(relative, b.glob)]

    def with_overrides(self, select=None, ignore=None) -> Config:
        from dataclasses import replace

        return replace(self, select=tuple(select) if select else self.select,
                       ignore=self.ignore + tuple(ignore or ()))


def parse_quantity(value, where: str) -> int | float:
    """A budget value: a number or a string such as "4.2G" or "64M"."""

    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            if text and text[-1] in "KMGT":
                return si_quantity(text)
            number = float(text)
            return int(number) if number.is_integer() else number
        except (ValueError, ZeroDivisionError):
            pass
    raise ConfigError(f"{where}: expected a number such as 25_557_032, \"30M\" or \"4.2G\", got {value!r}")


def _codes(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of code prefixes such as [\"W\", \"I302\"]")
    for prefix in value:
        if not any(code.startswith(prefix) for code in BY_CODE):
            raise ConfigError(f"{where}: {prefix!r} matches no diagnostic code (see 'archdsl rules')")
    return tuple(value)


def parse_config(table: dict, path: Path | None) -> Config:
    where = f"{path}: [tool.archdsl]" if path else "[tool.archdsl]"
    known = {"select", "ignore", "strict", "severity", "inputs", "budgets", "paths"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    kwargs: dict = {"path": path}
    if "select" in table:
        kwargs["select"] = _codes(table["select"], f"{where}.select")
    if "ignore" in table:
        kwargs["ignore"] = _codes(table["ignore"], f"{where}.ignore")
    if "strict" in table:
        if not isinstance(table["strict"], bool):
            raise ConfigError(f"{where}.strict: expected true or false")
        kwargs["strict"] = table["strict"]
    severity = {}
    for code, level in table.get("severity", {}).items():
        if code not in BY_CODE:
            raise ConfigError(f"{where}.severity: unknown code {code!r}")
        if code.startswith("E"):
            raise ConfigError(f"{where}.severity: {code} is an error and cannot be re-graded")
        try:
            severity[code] = Severity(level)
        except ValueError:
            raise ConfigError(f"{where}.severity.{code}: expected \"error\", \"warning\" or \"info\"") from None
    kwargs["severity"] = severity
    inputs = {}
    for name, dims in table.get("inputs", {}).items():
        if (not isinstance(dims, list) or not dims
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)):
            raise ConfigError(f"{where}.inputs.{name}: expected a list of positive integers such as [3, 224, 224]")
        inputs[name] = tuple(dims)
    kwargs["inputs"] = inputs
    budgets = []
    raw_budgets = table.get("budgets", [])
    if isinstance(raw_budgets, dict):
        raw_budgets = [raw_budgets]
    for index, entry in enumerate(raw_budgets):
        place = f"{where}.budgets[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{place}: expected a table")
        glob = entry.get("glob")
        if glob is not None and not isinstance(glob, str):
            raise ConfigError(f"{place}.glob: expected a string")
        limits = {}
        for key, value in entry.items():
            if key == "glob":
                continue
            if key not in FIGURES:
                raise ConfigError(f"{place}: unknown figure {key!r}; known: {', '.join(FIGURES)}")
            limits[key] = parse_quantity(value, f"{place}.{key}")
        budgets.append(Budget(limits, glob))
    kwargs["budgets"] = tuple(budgets)
    kwargs["paths"] = _library_paths(table.get("paths", []), path, f"{where}.paths")
    return Config(**kwargs)


def _library_paths(value, path: Path | None, where: str) -> tuple[Path, ...]:
    """``paths``: folders relative to the configuration file's folder."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v and "\0" not in v for v in value):
        raise ConfigError(f"{where}: expected a list of folder names such as [\"../shared/blocks\"]")
    base = path.parent if path else Path.cwd()
    try:
        return tuple((base / folder).resolve() for folder in value)
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise ConfigError(f"{where}: {error}") from None


@functools.cache
def _config_in(directory: Path) -> Config:
    for folder in (directory, *directory.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            data = _read_toml(candidate)
            table = data.get("tool", {}).get("archdsl")
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError(f"{candidate}: [tool.archdsl] must be a table")
                return parse_config(table, candidate)
    return Config()


def find_config(file: Path) -> Config:
    """The configuration governing ``file``: the nearest pyproject.toml above
    it that has a [tool.archdsl] table, or the defaults."""
    return _config_in(file.resolve().parent)


def load_config(path: Path) -> Config:
    """An explicitly named configuration file (``--config``)."""
    return parse_config(_read_toml(path).get("tool", {}).get("archdsl", {}), path)


#: The largest configuration file read.
MAX_CONFIG_BYTES = 1_000_000


def _read_toml(path: Path) -> dict:
    """A TOML file: regular (not a FIFO or a device), at most MAX_CONFIG_BYTES."""
    from .files import read_capped

    try:
        data = read_capped(path, MAX_CONFIG_BYTES)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than the limit of {MAX_CONFIG_BYTES:,} bytes")
        return tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
