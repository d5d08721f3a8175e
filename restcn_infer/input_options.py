"""What a caller says about its input: :class:`InputOptions` (``--layout``, ``--units``,
``--flip-y``, ``--accept-implausible`` of every ``restcn-infer`` command).

restcn models read raw 3-D coordinates in metres with the vertical axis pointing up, as their
Kinect training data has them. Input from elsewhere is converted before anything else:
``units`` scales it to metres, ``flip_y`` negates the y coordinate (image-style axes, y down).
Absent joints are exact zeros and stay so. ``layout`` declares the joint order instead of
letting the runtime guess it from the joint count (a guess is checked, see
:mod:`restcn_infer.plausibility`). ``accept_implausible`` classifies input the plausibility
check refuses, and says so in the verdict.

A 2-D model reads image keypoints in its training data's units and axes (pixels or image
fractions, y as the pose estimator gives it, usually down): ``flip_y`` works the same, but
pixels have no metre scale, so ``units`` other than ``m`` are refused for it
(:meth:`InputOptions.check_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from restcn_infer.errors import RestcnError
from restcn_infer.layouts import JointLayout, resolve_layout

#: Input units and their size in metres.
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}


class InputOptionsError(RestcnError, ValueError):
    """Options that cannot describe an input (unknown units)."""


@dataclass(frozen=True)
class InputOptions:
    """How to read the caller's coordinates (see the module docstring)."""

    layout: JointLayout | None = None
    units: str = "m"
    flip_y: bool = False
    accept_implausible: bool = False

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise InputOptionsError(f"unknown units {self.units!r}; expected one of {list(UNITS)}")

    @classmethod
    def from_names(cls, layout: str | None = None, units: str = "m", flip_y: bool = False,
                   accept_implausible: bool = False) -> InputOptions:
        """From a layout name or layout ``.json`` file (:class:`LayoutError` lists the known
        names)."""
        return cls(layout=None if layout is None else resolve_layout(layout), units=units,
                   flip_y=flip_y, accept_implausible=accept_implausible)

    @property
    def converts(self) -> bool:
        return self.units != "m" or self.flip_y

    def convert(self, seq: np.ndarray) -> np.ndarray:
        """``(..., C)`` coordinates in the caller's units and axes -> the model's (metres; y
        negated with ``flip_y``): a new array when anything changes, else ``seq`` itself."""
        if not self.converts:
            return seq
        out = np.asarray(seq, dtype=np.float32) * np.float32(UNITS[self.units])
        if self.flip_y:
            out[..., 1] *= -1
        return out

    def check_model(self, spec_input: Any) -> None:
        """Refuse options the model's input (an :class:`~restcn_infer.spec.InputSpec`) cannot
        honour: ``units`` for a 2-D model.

        Raises:
            InputOptionsError: saying why.
        """
        if spec_input.coords == 2 and self.units != "m":
            raise InputOptionsError(
                f"--units {self.units} converts lengths to metres, but this model reads 2-D "
                "keypoints (pixels or fractions of the image), which have no metre scale: "
                "leave --units out; 2-D input is read in the units of the model's training "
                "keypoints (the plausibility check says when a body's size differs)")

    def describe(self) -> str:
        """The conversions in words, for a verdict (empty when none)."""
        parts = []
        if self.units != "m":
            parts.append(f"{self.units} -> m")
        if self.flip_y:
            parts.append("y flipped")
        return ", ".join(parts)
