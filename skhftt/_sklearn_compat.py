"""Parameter validation for skhftt's estimators, on scikit-learn's public API.

scikit-learn validates its estimators' parameters with helpers in private
modules (``sklearn.utils._param_validation``, ``sklearn.base._fit_context``)
that change without deprecation. skhftt declares its constraints the same
way -- a ``_parameter_constraints`` dict checked when ``fit`` starts -- with
the small set of constraint kinds below, and relies only on
:func:`sklearn.get_config` / :func:`sklearn.config_context` (public) to skip
the check in nested fits, as scikit-learn does. This is the only module of
skhftt that deals with scikit-learn's validation machinery.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np
from sklearn import config_context, get_config

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "fit_context",
    "validate_parameters",
]

Fit = TypeVar("Fit", bound=Callable[..., Any])


class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has a value outside its constraints.

    Subclasses both ValueError and TypeError, like scikit-learn's error of
    the same name, so either ``except`` clause catches it.
    """


class Interval:
    """Numbers of one type between two bounds.

    Parameters
    ----------
    kind : numbers.Integral or numbers.Real
        The accepted type; bools are never accepted.
    left, right : float or None
        The bounds; None is unbounded.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.
    """

    def __init__(self, kind: type, left: float | None, right: float | None, *,
                 closed: str) -> None:
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be left, right, both or neither; got {closed!r}.")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, value: object) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and math.isnan(value):
            return False
        left_ok = self.left is None or (
            value >= self.left if self.closed in ("left", "both") else value > self.left)
        right_ok = self.right is None or (
            value <= self.right if self.closed in ("right", "both") else value < self.right)
        return left_ok and right_ok

    def __str__(self) -> str:
        name = "an int" if self.kind is Integral else "a float"
        left = "-inf" if self.left is None else self.left
        right = "inf" if self.right is None else self.right
        opening = "[" if self.closed in ("left", "both") and self.left is not None else "("
        closing = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        return f"{name} in the range {opening}{left}, {right}{closing}"


class StrOptions:
    """One of a set of strings."""

    def __init__(self, options: Iterable[str]) -> None:
        self.options = frozenset(options)

    def is_satisfied_by(self, value: object) -> bool:
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return "a str among " + "{" + ", ".join(repr(o) for o in sorted(self.options)) + "}"


class HasMethods:
    """An object with all of the named methods."""

    def __init__(self, methods: str | Iterable[str]) -> None:
        self.methods = (methods,) if isinstance(methods, str) else tuple(methods)

    def is_satisfied_by(self, value: object) -> bool:
        return all(callable(getattr(value, method, None)) for method in self.methods)

    def __str__(self) -> str:
        return "an object implementing " + ", ".join(repr(m) for m in self.methods)


class _TypeOf:
    def __init__(self, kind: type) -> None:
        self.kind = kind

    def is_satisfied_by(self, value: object) -> bool:
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        return f"an instance of {self.kind.__module__}.{self.kind.__qualname__}".replace(
            "builtins.", "")


class _NoneOnly:
    def is_satisfied_by(self, value: object) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _AnyOf:
    def __init__(self, description: str, *constraints: Any) -> None:
        self.description, self.constraints = description, constraints

    def is_satisfied_by(self, value: object) -> bool:
        return any(c.is_satisfied_by(value) for c in self.constraints)

    def __str__(self) -> str:
        return self.description


_NAMED = {
    "random_state": _AnyOf(
        "an int in the range [0, 4294967295], a numpy RandomState instance or None",
        Interval(Integral, 0, 2**32 - 1, closed="both"),
        _TypeOf(np.random.RandomState), _NoneOnly()),
    "verbose": _AnyOf("an int in the range [0, inf) or a bool",
                      Interval(Integral, 0, None, closed="left"), _TypeOf(bool),
                      _TypeOf(np.bool_)),
}


def _as_constraint(constraint: Any) -> Any:
    if constraint is None:
        return _NoneOnly()
    if isinstance(constraint, str):
        if constraint not in _NAMED:
            raise ValueError(f"unknown named constraint {constraint!r}; known: {sorted(_NAMED)}.")
        return _NAMED[constraint]
    if isinstance(constraint, type):
        return _TypeOf(constraint)
    return constraint


def validate_parameters(estimator: Any) -> None:
    """Check every parameter against ``estimator._parameter_constraints``.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the estimator, what is accepted and the value.
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params[name]
        options = [_as_constraint(c) for c in constraints]
        if any(option.is_satisfied_by(value) for option in options):
            continue
        described = [str(option) for option in options]
        accepted = described[0] if len(described) == 1 else (
            ", ".join(described[:-1]) + " or " + described[-1])
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {accepted}. "
            f"Got {value!r} instead."
        )


def fit_context(fit: Fit) -> Fit:
    """Decorate ``fit``: validate the parameters, unless inside another fit.

    Parameters are checked once, at the outermost ``fit`` (a ``GridSearchCV``
    or a ``Pipeline`` validates its own), as scikit-learn's estimators do.
    """

    @functools.wraps(fit)
    def wrapper(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        if not get_config().get("skip_parameter_validation", False):
            validate_parameters(estimator)
        with config_context(skip_parameter_validation=True):
            return fit(estimator, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
