"""Plain-text tables of measured facts, written once for report.html and report.md so the two always agree.

A figure results.json does not hold is written NOT_MEASURED, never left blank or shown as 0. How a figure was
measured is a footnote ("[1]"), listed once under its table, so a long method statement shared by every
trial is not repeated in every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_MEASURED = "not measured"
NOT_RECORDED = "not recorded"
"""For a fact about how something was done (a method, a choice) that the record does not carry."""


@dataclass
class FactTable:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Footnotes ("[1] how it was measured") first, then the table's other statements."""
    _marks: dict[str, int] = field(default_factory=dict)

    def footnote(self, text: str | None) -> str:
        """'[n]' for `text`, numbered in first-seen order and listed once in `notes`; NOT_RECORDED for none."""
        if not text:
            return NOT_RECORDED
        if text not in self._marks:
            self._marks[text] = len(self._marks) + 1
            self.notes.insert(len(self._marks) - 1, f"[{self._marks[text]}] {text}")
        return f"[{self._marks[text]}]"


def share(value: float | None) -> str:
    """A fraction (0..1) as a percentage."""
    return NOT_MEASURED if value is None else f"{100 * value:.1f}%"


def ratio(value: float | None) -> str:
    """A score on 0..1 kept as it is (recall@k, MRR: the retrieval literature's convention)."""
    return NOT_MEASURED if value is None else f"{value:.2f}"


def millis(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:,.1f} ms" if value >= 1 else f"{value:.3g} ms"


def seconds(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:,.1f} s"


def dollars(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"${value:.4f}" if value < 100 else f"${value:,.0f}"


def count_of(hits: int | None, n: int | None) -> str:
    """'4 of 10 (40.0%)'."""
    if hits is None or not n:
        return NOT_MEASURED
    return f"{hits} of {n} ({100 * hits / n:.1f}%)"
