"""What a detector's fitted state must look like, checked when a saved file is loaded.

Every detector declares, in ``_fitted_spec``, one field per entry of its
saved fitted state (:meth:`~skhftt.detectors.base.BaseTextDetector._fitted_state`):
its type and, for arrays, the dtype, shape, finiteness and range. Shapes are
written with named sizes, e.g. ``("C", "dim")``: the first field that gives a
name its value binds it and every later one must agree, so task columns of
another width than ``embedding_dim_``, or 4 task columns with 3 names, are
refused. :func:`check_fitted_state` checks a whole state against a spec and
names the first field that fails.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from skhftt.space.validation import UNIT_TOLERANCE

__all__ = [
    "Array",
    "Columns",
    "Count",
    "Digests",
    "Field",
    "Names",
    "Number",
    "Numbers",
    "Records",
    "Size",
    "Text",
    "check_fitted_state",
]

# Named size -> (its value, the field that gave it).
Sizes = dict[str, tuple[int, str]]


def _show(value: object) -> str:
    """A short, one-line ``repr`` of a value read from a file."""
    return reprlib.repr(value)


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_finite_number(value: object) -> bool:
    if not isinstance(value, Real) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _bind(sizes: Sizes, symbol: str, value: int, name: str, what: str) -> None:
    """Give ``symbol`` its value, or check it against the value a former field gave."""
    bound = sizes.setdefault(symbol, (value, name))
    if bound[0] != value:
        raise ValueError(f"{name} {what}, but {bound[1]} gives {symbol} = {bound[0]}.")


class Field:
    """The rule one fitted attribute follows."""

    def check(self, name: str, value: Any, sizes: Sizes) -> Any:
        """Return ``value`` as the detector holds it, or raise naming ``name``.

        Raises
        ------
        ValueError
            ``value`` breaks the rule.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Size(Field):
    """A positive int that gives a named size its value (e.g. ``embedding_dim_``)."""

    symbol: str

    def check(self, name: str, value: Any, sizes: Sizes) -> int:
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {_show(value)}.")
        _bind(sizes, self.symbol, int(value), name, f"is {value}")
        return int(value)


@dataclass(frozen=True)
class Count(Field):
    """An int of 0 or more."""

    def check(self, name: str, value: Any, sizes: Sizes) -> int:
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be an int of 0 or more; got {_show(value)}.")
        return int(value)


@dataclass(frozen=True)
class Text(Field):
    """A str, or also None when ``optional``."""

    optional: bool = False

    def check(self, name: str, value: Any, sizes: Sizes) -> str | None:
        if isinstance(value, str) or (self.optional and value is None):
            return value
        expected = "a str or null" if self.optional else "a str"
        raise ValueError(f"{name} must be {expected}; got {_show(value)}.")


@dataclass(frozen=True)
class Number(Field):
    """A finite real number, optionally within ``[low, high]`` (or ``> 0`` when ``positive``)."""

    low: float | None = None
    high: float | None = None
    positive: bool = False

    def check(self, name: str, value: Any, sizes: Sizes) -> float:
        ok = _is_finite_number(value) and (not self.positive or value > 0) and (
            self.low is None or value >= self.low) and (self.high is None or value <= self.high)
        if not ok:
            raise ValueError(f"{name} must be {self._expected()}; got {_show(value)}.")
        return float(value)

    def _expected(self) -> str:
        if self.positive:
            return "a finite number above 0"
        if self.low is not None and self.high is not None:
            return f"a number from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"a finite number of at least {self.low:g}"
        return "a finite number"


@dataclass(frozen=True)
class Numbers(Field):
    """A list of finite numbers, of ``length`` items when given."""

    length: int | None = None

    def check(self, name: str, value: Any, sizes: Sizes) -> list[float]:
        if not isinstance(value, list) or not all(_is_finite_number(v) for v in value) or (
                self.length is not None and len(value) != self.length):
            size = "" if self.length is None else f" {self.length}"
            raise ValueError(f"{name} must be a list of{size} finite numbers; got "
                             f"{_show(value)}.")
        return [float(v) for v in value]


@dataclass(frozen=True)
class Names(Field):
    """A list of str (or also None items when ``optional_items``), one per ``symbol``."""

    symbol: str
    optional_items: bool = False

    def check(self, name: str, value: Any, sizes: Sizes) -> list[str | None]:
        if not isinstance(value, list) or not all(
                isinstance(v, str) or (self.optional_items and v is None) for v in value):
            items = "str or null" if self.optional_items else "str"
            raise ValueError(f"{name} must be a list of {items}; got {_show(value)}.")
        _bind(sizes, self.symbol, len(value), name, f"has {len(value)} items")
        return value


@dataclass(frozen=True)
class Records(Field):
    """A list of JSON objects (e.g. one record per epoch)."""

    def check(self, name: str, value: Any, sizes: Sizes) -> list[dict]:
        if not isinstance(value, list) or not all(
                isinstance(v, dict) and all(isinstance(k, str) for k in v) for v in value):
            raise ValueError(f"{name} must be a list of JSON objects; got {_show(value)}.")
        return value


@dataclass(frozen=True)
class Digests(Field):
    """None, or a mapping of str to a digest string or None (``training_digests_``)."""

    def check(self, name: str, value: Any, sizes: Sizes) -> dict | None:
        if value is None or (isinstance(value, dict) and all(
                isinstance(k, str) and (v is None or isinstance(v, str))
                for k, v in value.items())):
            return value
        raise ValueError(f"{name} must be null or a mapping of str to digest strings; got "
                         f"{_show(value)}.")


@dataclass(frozen=True)
class Array(Field):
    """An array of dtype kind in ``kinds``, of ``shape`` in named or fixed sizes.

    Floats must be finite; ``unit_rows`` requires rows of unit L2 norm (within
    :data:`~skhftt.space.validation.UNIT_TOLERANCE`); ``minimum`` bounds the
    values from below.
    """

    shape: tuple[str | int, ...]
    kinds: str = "f"
    unit_rows: bool = False
    minimum: float | None = None

    def check(self, name: str, value: Any, sizes: Sizes) -> np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.kind not in self.kinds:
            got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else _show(value)
            raise ValueError(f"{name} must be an array of {self._kinds()}; got {got}.")
        expected = "(" + ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "")
        if value.ndim != len(self.shape):
            raise ValueError(f"{name} has shape {value.shape}; expected {expected}).")
        for size, symbol in zip(value.shape, self.shape, strict=True):
            if (isinstance(symbol, int) and size != symbol) or size < 1:
                raise ValueError(f"{name} has shape {value.shape}; expected {expected}), "
                                 "no size 0.")
            if isinstance(symbol, str):
                _bind(sizes, symbol, size, name, f"has shape {value.shape}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{name} holds NaN or infinite values.")
        if self.minimum is not None and (value < self.minimum).any():
            raise ValueError(f"{name} holds values below {self.minimum}.")
        if self.unit_rows:
            norms = np.linalg.norm(value.astype(np.float64), axis=-1)
            if (np.abs(norms - 1.0) > UNIT_TOLERANCE).any():
                raise ValueError(f"{name} must have rows of unit length; a row has norm "
                                 f"{norms[np.argmax(np.abs(norms - 1.0))]:.6g}.")
        return value

    def _kinds(self) -> str:
        words = {"f": "floats", "i": "ints", "u": "unsigned ints", "b": "bools", "U": "strings"}
        return " or ".join(words[kind] for kind in self.kinds)


class Columns(Array):
    """Unit float rows of the embedding space, one per ``symbol``: shape ``(symbol, "dim")``."""

    def __init__(self, symbol: str) -> None:
        super().__init__((symbol, "dim"), unit_rows=True)


def check_fitted_state(spec: Mapping[str, Field], state: Mapping[str, Any]) -> dict[str, Any]:
    """Check a whole fitted state against a detector's spec, in the spec's order.

    Parameters
    ----------
    spec : mapping of str to Field
        The detector's ``_fitted_spec``.
    state : mapping
        The fitted state read from a file: names to arrays and JSON values.

    Returns
    -------
    dict
        The state as the detector holds it (numbers as float, sizes as int).

    Raises
    ------
    ValueError
        A field is missing, unexpected or breaks its rule; the message names it.
    """
    missing = [name for name in spec if name not in state]
    if missing:
        raise ValueError(f"its fitted state lacks {missing[0]}.")
    extra = sorted(set(state) - set(spec))
    if extra:
        raise ValueError(f"its fitted state has {extra[0]}, which this kind of detector "
                         "does not hold.")
    sizes: Sizes = {}
    return {name: field.check(name, state[name], sizes) for name, field in spec.items()}
