"""Which label class sample i is centred on, for per-class crop ratios (MONAI's ``RandCropByLabelClassesd``).

MONAI draws each crop's class independently with probability ``ratio / sum``. Here the class of
sample i is a pure function of i instead: a cycle of ``sum(ratios)`` slots (ratios as small whole
numbers) is filled by smooth weighted round robin (every slot goes to the class furthest behind its
share), and sample i takes slot ``i mod sum``. Each class gets exactly its ratio in every cycle, and
within one of its share over the first n samples of any pass (a test checks every prefix).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

from ..errors import ConfigError

__all__ = ["MAX_CYCLE", "class_cycle", "class_of", "whole_ratios"]

MAX_CYCLE = 100_000  # the longest cycle of classes kept (ratios summing to more are refused)
DECIMALS = 6  # a fractional ratio counts to this many decimals (0.25 -> 250000, then reduced)


def whole_ratios(values: Sequence[object], name: str = "crop ratios") -> tuple[int, ...]:
    """``values`` (non-negative numbers, not all 0) as the smallest whole numbers in the same proportion."""
    try:
        numbers = [float(v) for v in values]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={list(values)!r} must be numbers, one per class (background first).") from None
    if not numbers or any(not math.isfinite(v) or v < 0 for v in numbers) or sum(numbers) == 0:
        raise ConfigError(f"{name}={list(values)!r} must be non-negative numbers, one per class, not all 0.")
    scale = 1 if all(v.is_integer() for v in numbers) else 10**DECIMALS
    whole = [round(v * scale) for v in numbers]
    if sum(whole) == 0:
        raise ConfigError(f"{name}={list(values)!r} are too small to count; give them as whole numbers, e.g. [1, 2, 1].")
    common = math.gcd(*whole)
    whole = [v // common for v in whole]
    if sum(whole) > MAX_CYCLE:
        raise ConfigError(f"{name}={list(values)!r} make a cycle of {sum(whole)} samples (over {MAX_CYCLE}); "
                          f"give them as small whole numbers, e.g. [1, 2, 1].")
    return tuple(whole)


@functools.lru_cache(maxsize=256)
def class_cycle(ratios: tuple[int, ...]) -> tuple[int, ...]:
    """The classes of one cycle of ``sum(ratios)`` samples; class k fills ``ratios[k]`` slots."""
    total = sum(ratios)
    credit = [0] * len(ratios)
    cycle = []
    for _ in range(total):
        for k, ratio in enumerate(ratios):
            credit[k] += ratio
        chosen = max(range(len(ratios)), key=lambda k: (credit[k], -k))  # the furthest behind; lowest class on ties
        credit[chosen] -= total
        cycle.append(chosen)
    return tuple(cycle)


def class_of(index: int, ratios: tuple[int, ...]) -> int:
    """The class sample ``index`` is centred on (``ratios`` as :func:`whole_ratios` gives them)."""
    cycle = class_cycle(ratios)
    return cycle[index % len(cycle)]
