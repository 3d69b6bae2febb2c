"""Regenerates the documents made from the registries (docs/ops.md,
docs/rules.md and the generated tables of docs/analysis.md, runtime.md and
export.md).  ``--check`` only reports stale ones (exit 1)."""

import sys
from pathlib import Path

from archdsl.docgen import stale, write

DOCS = Path(__file__).resolve().parent.parent / "docs"

if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        out_of_date = stale(DOCS)
        for path in out_of_date:
            print(f"out of date: {path.relative_to(DOCS.parent)}")
        sys.exit(1 if out_of_date else 0)
    for path in write(DOCS):
        print(f"wrote {path.relative_to(DOCS.parent)}")
