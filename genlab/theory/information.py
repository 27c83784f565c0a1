"""Closed-form mutual informations (bits) that the MI estimators are checked against."""

from __future__ import annotations

import math


def gaussian_mi(rho: float) -> float:
    """I(A;B) of jointly Gaussian scalars with correlation ρ: −½·log2(1 − ρ²)
    (Cover & Thomas 2006, "Elements of Information Theory", Example 8.5.1)."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    return -0.5 * math.log2(1.0 - rho * rho)


def binary_entropy(p: float) -> float:
    """H(p) = −p log2 p − (1−p) log2 (1−p) in bits."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def bsc_mi(flip: float) -> float:
    """I(X;Y) of a binary symmetric channel with a uniform input bit and flip probability ``flip``:
    1 − H(flip) bits (Cover & Thomas 2006, Sec. 7.1.4)."""
    return 1.0 - binary_entropy(flip)
