"""Robust statistics for anomaly thresholds: the median and the median absolute deviation (MAD).

A value is an outlier when it lies more than `threshold` robust deviations from the median of
its history, a robust deviation being 1.4826 x MAD (the standard deviation of normal data). A
few extreme values in the history move neither the median nor the MAD, unlike a mean and
standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normally distributed data


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def mad(values: Sequence[float]) -> float:
    """The median absolute deviation from the median."""
    centre = median(values)
    return median([abs(v - centre) for v in values])


@dataclass(frozen=True)
class Judgement:
    """How far `value` lies from its history, and the numbers that say so."""

    value: float
    median: float
    deviation: float  # the robust deviation (MAD x 1.4826), floored (see `judge`)
    score: float  # |value - median| / deviation
    outlier: bool

    def explain(self) -> str:
        return (
            f"value {self.value:g}, median {self.median:g}, robust deviation {self.deviation:g}, "
            f"score {self.score:.1f}"
        )


def judge(value: float, history: Sequence[float], threshold: float, *, floor: float = 0.0) -> Judgement:
    """Is `value` more than `threshold` robust deviations from the median of `history`?

    The deviation is floored at `floor` and at 5 % of the median's size: a history of identical
    values (MAD 0) would otherwise call any other value an outlier.
    """
    centre = median(history)
    deviation = max(MAD_SCALE * mad(history), floor, abs(centre) * 0.05, 1e-9)
    score = abs(value - centre) / deviation
    return Judgement(value, centre, deviation, score, score > threshold)
