"""One constraint per parameter, checked all at once before any work (scikit-learn's ``_parameter_constraints``).

scikit-learn's own machinery (``sklearn.utils._param_validation``) is private, so this is the small
version: a table ``{name: constraint}`` and :func:`check_params`, which raises
:class:`InvalidParameterError` (a ``ValueError`` and a ``TypeError``, as scikit-learn's is) with its
message: ``The 'max_epochs' parameter of AutoencoderTransformer must be an int in the range [1, inf).
Got 0 instead.``
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from aekit.errors import ConfigError


class InvalidParameterError(ConfigError, TypeError):
    """A parameter's type or value is not allowed."""


@dataclass(frozen=True)
class Interval:
    """A finite int or real number in a range; ``closed`` says which ends belong to it."""

    kind: type  # int or float
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both, left, right, neither

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral if self.kind is int else numbers.Real):
            return False
        try:
            if not math.isfinite(v):
                return False
        except OverflowError:  # an int too large for a float: outside any range written here
            return False
        low_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        high_ok = self.high is None or (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'an int' if self.kind is int else 'a float'} in the range {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a few values."""

    values: tuple | Mapping  # a mapping (a registry) is read at each check: entries added later count

    def accepts(self, v: Any) -> bool:
        return isinstance(v, (str, bool, type(None))) and v in self.values

    def __str__(self) -> str:
        if all(isinstance(v, bool) for v in self.values):
            return "true or false"
        return "one of: " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Sizes:
    """A non-empty tuple or list of positive ints (layer widths)."""

    def accepts(self, v: Any) -> bool:
        return (isinstance(v, (tuple, list)) and len(v) > 0
                and all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in v))

    def __str__(self) -> str:
        return "a non-empty tuple of positive ints, like (256, 64)"


@dataclass(frozen=True)
class Weights:
    """A tuple or list of finite numbers >= 0 (a weight per layer): non-empty, unless ``empty`` (none given)."""

    empty: bool = False

    def accepts(self, v: Any) -> bool:
        return (isinstance(v, (tuple, list)) and (len(v) > 0 or self.empty)
                and all(Interval(float, 0).accepts(w) for w in v))

    def __str__(self) -> str:
        return f"a {'' if self.empty else 'non-empty '}tuple of finite numbers >= 0, like (1000, 10, 0.1)"


@dataclass(frozen=True)
class InstanceOf:
    """An instance of one of ``types`` (None included by passing ``type(None)``)."""

    types: tuple
    text: str

    def accepts(self, v: Any) -> bool:
        return isinstance(v, self.types)

    def __str__(self) -> str:
        return self.text


def describe_violation(value: Any, allowed) -> str | None:
    """None where one of the constraints ``allowed`` (one, or a list) accepts ``value``; else "must be ..."."""
    allowed = allowed if isinstance(allowed, (list, tuple)) else [allowed]
    if any(c.accepts(value) for c in allowed):
        return None
    return "must be " + " or ".join(str(c) for c in allowed)


def check_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` for the first parameter that no constraint of its accepts."""
    for name, allowed in constraints.items():
        problem = describe_violation(params[name], allowed)
        if problem:
            raise InvalidParameterError(f"The {name!r} parameter of {owner} {problem}. Got {params[name]!r} instead.")
