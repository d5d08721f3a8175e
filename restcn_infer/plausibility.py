"""Is this input like the model's training data? :class:`InputChecker` compares one sequence
with the model's :class:`~restcn_infer.envelope.Envelope` and gives a :class:`Verdict`.

Checks, on the sequence in the model's layout (after ``--units``/``--flip-y``), each with what
looks wrong and how to fix it:

- **2-D keypoints**: the third coordinate barely varies (its range is under a tenth of the
  training data's smallest depth ratio): image keypoints with a confidence or 0 as third value.
  Nothing converts that; the other checks are skipped.
- **joint order**: over a quarter of the bones are more than 2x off the training proportions
  (after removing the overall scale): the joints are in another layout's order, and the checks
  below would measure the wrong joints, so they are skipped. A layout guessed from the joint
  count is refused then; declare it with ``--layout``. (Measured: real NW-UCLA, UTD-MHAD and
  NTU sequences have at most 2 of 19 bones that far off; randomly reordered joints at least 6,
  an OpenPose BODY_25 skeleton read as ``ntu25`` 16 of 24.)
- **units**: the median bone length lies outside ``[p1 / 1.6, p99 * 1.6]`` of the training
  sequences'; the message names the unit that would fit (``--units cm`` or ``--units mm``).
- **vertical axis**: the hips-to-head direction makes an angle over ~73 degrees (cosine under
  0.3) with the training data's; ``--flip-y`` is suggested when flipping y would fit.
- **position**: the body's centre lies outside the training centres, widened per axis by half
  their range plus five median bones (~1 m); checked only when units and axis are fine.

A 2-D model (image keypoints) is checked the same way in its training data's units (pixels or
image fractions), except for depth: a body's size in pixels depends on the camera's
resolution and distance, so the units check then says by how much to rescale instead of naming
a unit (``--units`` converts lengths to metres and does not apply). A 2-D model without a
measured envelope checks no sizes.

Whatever ``accept_implausible`` says, coordinates beyond
:data:`~restcn_infer.limits.MAX_ABS_COORDINATE` are refused: no sensor measures that far, and the
network's float32 arithmetic would overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restcn_infer.envelope import Envelope, default_envelope, measure
from restcn_infer.errors import SkeletonFormatError
from restcn_infer.input_options import UNITS
from restcn_infer.layouts import JointLayout
from restcn_infer.limits import check_magnitude

#: Accepted median bone length: the training percentiles widened by this factor.
SCALE_MARGIN = 1.6
#: Smallest accepted cosine between the input's vertical axis and the training data's.
MIN_UP_COSINE = 0.3
#: A bone is out of proportion beyond this factor; the joint order is refused when more than
#: :data:`MISFIT_SHARE` of the bones are.
BONE_FACTOR = 2.0
MISFIT_SHARE = 0.25
#: Position margin per axis beyond half the training range, in median training bone lengths
#: (~1 m for a human in metres).
POSITION_PAD = 5.0
#: Depth ratio below the training data's 1st percentile divided by this: 2-D keypoints.
FLAT_FACTOR = 10.0
#: Depth ratio assumed for a model whose envelope does not know it (3-D Kinect data: >= 0.1).
DEFAULT_DEPTH_RATIO = 0.05
OVERRIDE_HINT = "(or pass --accept-implausible to classify it anyway)"


@dataclass(frozen=True)
class Verdict:
    """The outcome of the plausibility check of one input.

    Attributes:
        plausible: every check that ran passed.
        problems: one message per failed check: what looks wrong and how to fix it.
        checked: the checks that ran (``depth``, ``units``, ``axis``, ``joints``, ``position``).
        layout: the input's layout (its joints are matched to the model's by name).
        layout_guessed: the layout came from the joint count, not from the caller.
        envelope: where the reference comes from (``training data``, ``mean skeleton``,
            ``default``).
        scale: the input's median bone length over the training median.
        converted: the conversions applied first (``cm -> m, y flipped``), empty when none.
        accepted: classified although implausible (``accept_implausible``).
    """

    plausible: bool
    problems: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    layout: str = ""
    layout_guessed: bool = False
    envelope: str = ""
    scale: float | None = None
    converted: str = ""
    accepted: bool = field(default=False)

    def to_json(self) -> dict[str, Any]:
        """The ``"input"`` object of ``--json`` results."""
        doc: dict[str, Any] = {"plausible": self.plausible, "layout": self.layout,
                               "layout_guessed": self.layout_guessed,
                               "checked": list(self.checked), "envelope": self.envelope}
        if self.scale is not None:
            doc["scale"] = round(self.scale, 4)
        if self.converted:
            doc["converted"] = self.converted
        if self.problems:
            doc["problems"] = list(self.problems)
        if self.accepted:
            doc["accepted_implausible"] = True
        return doc


class ImplausibleInputError(SkeletonFormatError):
    """An input unlike the model's training data (see :class:`Verdict`); ``verdict`` says why."""

    def __init__(self, source: object, verdict: Verdict) -> None:
        super().__init__(source, "; ".join(verdict.problems) + f" {OVERRIDE_HINT}")
        self.verdict = verdict


def envelope_for(spec: Any) -> Envelope:
    """A model description's envelope: the stored one, else :func:`default_envelope`."""
    stored = getattr(spec, "envelope", None)
    if stored is not None:
        return stored
    joints = spec.config.get("modality", "joint") == "joint"
    return default_envelope(np.asarray(spec.mean), spec.input.layout, spec.input.bodies, joints,
                            spec.input.coords)


def _fmt(vector: Any) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in vector) + ")"


class InputChecker:
    """The plausibility check of one model (see the module docstring).

    Args:
        spec: the model's :class:`~restcn_infer.spec.ModelSpec`.
        accept_implausible: report problems in the verdict instead of refusing.
    """

    def __init__(self, spec: Any, *, accept_implausible: bool = False) -> None:
        self.layout: JointLayout = spec.input.layout
        self.coords: int = spec.input.coords
        self.envelope = envelope_for(spec)
        self.accept_implausible = accept_implausible

    def verdict(self, seq: np.ndarray, *, layout: str | None = None, guessed: bool = False,
                converted: str = "") -> Verdict:
        """The verdict on ``seq`` ``(M, T, V, C)`` in the model's layout and coordinates."""
        env = self.envelope
        found = measure(seq, self.layout)
        checked: list[str] = []
        problems: list[str] = []
        base = dict(layout=layout or self.layout.name, layout_guessed=guessed,
                    envelope=env.origin, converted=converted)
        if found.scale is None:  # no body to measure: nothing to say (prepare refuses empties)
            return Verdict(plausible=True, **base)
        scale = found.scale / env.scale[1]

        flat = (env.depth_ratio_p1 or DEFAULT_DEPTH_RATIO) / FLAT_FACTOR
        if found.depth_ratio is not None:
            checked.append("depth")
            if found.depth_ratio < flat:
                problems.append(
                    f"the third coordinate barely varies (its range is {found.depth_ratio:.3g} "
                    "of the x/y range): this looks like 2-D image keypoints with a confidence "
                    "or 0 as third value; the model needs 3-D coordinates in metres, like its "
                    "training data")
                return Verdict(False, tuple(problems), tuple(checked), scale=scale, **base)

        if env.bone_ratios is not None:
            checked.append("joints")
            problem = self._joints_problem(found.bone_ratios, np.asarray(env.bone_ratios),
                                           layout or self.layout.name, guessed)
            if problem:  # the joints are not what they are taken for: nothing else is measured
                return Verdict(False, (problem,), tuple(checked), scale=scale, **base)

        checked.append("units")
        low, high = env.scale[0] / SCALE_MARGIN, env.scale[2] * SCALE_MARGIN
        units_ok = low <= found.scale <= high
        if not units_ok:
            problems.append(self._units_problem(found.scale, low, high))

        axis_ok = True
        if env.up is not None and found.up is not None:
            checked.append("axis")
            up = np.asarray(env.up)
            cosine = float(found.up @ up)
            if cosine < MIN_UP_COSINE:
                axis_ok = False
                flip = np.ones(len(found.up))
                flip[1] = -1.0
                inverted = ("the y axis looks inverted (image-style, y down)" if self.coords == 3
                            else "the y axis points the other way than in the training "
                                 "keypoints")
                fix = (f"{inverted}: pass --flip-y" if (found.up * flip) @ up >= MIN_UP_COSINE
                       else "rotate the coordinates so that the model's up axis points up")
                problems.append(f"the body is {'upside down' if cosine < 0 else 'tilted'}: "
                                f"its hips-to-head direction {_fmt(found.up)} makes an angle "
                                f"of {np.degrees(np.arccos(np.clip(cosine, -1, 1))):.0f} degrees "
                                f"with the training data's up axis {_fmt(up)}; {fix}")

        if units_ok and axis_ok and env.centre_low is not None and found.centre is not None:
            checked.append("position")
            lo, hi = np.asarray(env.centre_low), np.asarray(env.centre_high)
            pad = (hi - lo) / 2 + POSITION_PAD * env.scale[1]
            lo, hi = lo - pad, hi + pad
            if np.any(found.centre < lo) or np.any(found.centre > hi):
                ranges = ", ".join(f"{axis} {a:.2f}..{b:.2f}" for axis, a, b in zip("xyz", lo, hi))
                problems.append(f"the body's centre {_fmt(found.centre)} lies outside the "
                                f"training positions ({ranges}, margin included); the model "
                                "reads raw camera-space coordinates, so a body elsewhere is "
                                "unlike anything it was trained on")
        return Verdict(not problems, tuple(problems), tuple(checked), scale=scale, **base)

    def _units_problem(self, scale: float, low: float, high: float) -> str:
        typical = self.envelope.scale[1]
        if self.coords == 2:
            return (f"the body is {scale / typical:.3g}x the size of the training bodies "
                    f"(median bone length {scale:.4g}, training {typical:.3g}, accepted "
                    f"{low:.3g}..{high:.3g}, in the training keypoints' units): 2-D keypoints "
                    "in pixels scale with the camera's resolution and the person's distance "
                    "and have no metre scale (--units does not apply); rescale the input by "
                    f"about {typical / scale:.3g}, e.g. to the resolution the training video "
                    "had")
        fits = [unit for unit, metres in UNITS.items()
                if unit != "m" and low <= scale * metres <= high]
        fix = (f"the input looks like {'centimetres' if fits[0] == 'cm' else 'millimetres'}: "
               f"pass --units {fits[0]}" if fits else
               "check the input's units (--units mm|cm|m); restcn models read metres")
        return (f"the body is {scale / typical:.3g}x the size of the training bodies (median "
                f"bone length {scale:.4g}, training {typical:.3g}, accepted "
                f"{low:.3g}..{high:.3g}): {fix}")

    def _joints_problem(self, ratios: np.ndarray, reference: np.ndarray, layout: str,
                        guessed: bool) -> str | None:
        usable = np.isfinite(ratios) & (ratios > 0) & (reference > 0)
        if usable.sum() < 3:
            return None
        offset = np.log(ratios[usable]) - np.log(reference[usable])  # (E',)
        offset -= np.median(offset)  # proportions, not the overall scale
        misfit = np.abs(offset) > np.log(BONE_FACTOR)
        if misfit.mean() <= MISFIT_SHARE:
            return None
        bones = np.asarray(self.layout.bones)[usable][misfit]
        names = ", ".join(f"{self.layout.joint_names[c]}-{self.layout.joint_names[p]}"
                          for c, p in bones[:3])
        how = (f"layout {layout} was guessed from the joint count; declare the input's layout "
               "with --layout NAME" if guessed else
               f"check that the joints are in layout {layout}'s order")
        return (f"the bone lengths do not fit layout {layout}: {int(misfit.sum())} of "
                f"{int(usable.sum())} bones are more than {BONE_FACTOR:g}x off the training "
                f"proportions (e.g. {names}): {how}")

    def check(self, seq: np.ndarray, *, source: object = None, layout: str | None = None,
              guessed: bool = False, converted: str = "") -> Verdict:
        """:meth:`verdict`, refusing an implausible input unless ``accept_implausible``.

        Raises:
            ImplausibleInputError: naming ``source``, with the verdict.
            SkeletonFormatError: coordinates beyond any unit's range (never accepted).
        """
        check_magnitude(seq, source)
        verdict = self.verdict(seq, layout=layout, guessed=guessed, converted=converted)
        if verdict.plausible:
            return verdict
        if not self.accept_implausible:
            raise ImplausibleInputError(source, verdict)
        return Verdict(**{**verdict.__dict__, "accepted": True})
