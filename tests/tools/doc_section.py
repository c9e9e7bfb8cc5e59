"""A generated section of a doc, between a BEGIN and an END marker: what
the render_*_doc.py tools and their tests share (the replacement
and their command line)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Section:
    doc: Path
    begin: str
    end: str

    def replace(self, text: str, section: str) -> str:
        """The doc's `text` with `section` between the markers."""
        head, begin, rest = text.partition(self.begin)
        _, end, tail = rest.partition(self.end)
        if not begin or not end:
            raise ValueError(f"{self.doc.name} lacks the markers {self.begin} / {self.end}")
        return f"{head}{self.begin}\n{section}\n{self.end}{tail}"

    def inside(self, text: str) -> str:
        """What the doc's `text` holds between the markers (empty without them)."""
        _, _, rest = text.partition(self.begin)
        inside, _, _ = rest.partition(self.end)
        return inside

    def main(
        self, argv: Sequence[str] | None, expected: Callable[[str], str], doc: str | None
    ) -> int:
        """Rewrite the doc as `expected` (doc text -> doc text) makes it; with
        --check, exit 1 when that would change it. `doc` is the tool's docstring."""
        parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
        parser.add_argument("--check", action="store_true", help="exit 1 when the doc is stale")
        args = parser.parse_args(argv)
        current = self.doc.read_text(encoding="utf-8")
        wanted = expected(current)
        if args.check:
            if wanted != current:
                print(f"{self.doc.relative_to(REPO)} is stale: run make docs", file=sys.stderr)
                return 1
            return 0
        if wanted != current:
            self.doc.write_text(wanted, encoding="utf-8")
            print(f"rewrote {self.doc.relative_to(REPO)}")
        return 0
