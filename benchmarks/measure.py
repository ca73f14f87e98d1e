"""Timing helpers: a clock, interleaved repeats, medians and ratios."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Callable, Mapping

__all__ = ["clock", "interleave", "median", "ratio", "log", "fmt", "dispose"]

clock = time.perf_counter


def log(message: str) -> None:
    """Progress on stderr (the report goes to the markdown file)."""
    print(f"[benchmarks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def interleave(methods: Mapping[str, Callable[[], float]], repeats: int,
               label: str = "") -> dict[str, list[float]]:
    """Run every method once per round, in order (A, B, C, A, B, C, ...), ``repeats`` rounds.

    Each method returns one measured value (seconds or samples/s). Interleaving spreads the noise of
    a shared machine over all methods instead of letting it land on whichever ran last.
    """
    values: dict[str, list[float]] = {name: [] for name in methods}
    for round_index in range(repeats):
        spent = {}
        for name, method in methods.items():
            started = clock()
            values[name].append(float(method()))
            spent[name] = clock() - started
        if label:
            summary = ", ".join(f"{name}={values[name][-1]:.4g} ({spent[name]:.1f} s)" for name in methods)
            log(f"{label} round {round_index + 1}/{repeats}: {summary}")
    return values


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    if numerator != numerator or denominator != denominator:  # NaN
        return None
    return numerator / denominator


def fmt(value: float | None) -> str:
    """A compact human number (about 3 significant digits, no exponent), '—' when missing."""
    if value is None or value != value:
        return "—"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def dispose() -> None:
    """Collect dropped loaders now, outside any timed region (``del`` them first).

    torchdata joins a node's threads in ``__del__``; left to the garbage collector, that join (up
    to half a second) would land inside whichever measurement runs next.
    """
    gc.collect()
