"""The finding of a diagnosis: which classes are weak, and which joints to target for them.

The paper's reasoning (section 5.2, then 4.2): the model fails on fine hand motion; its decoded
skeletons show the hands barely moving where the input's hands carry the action; so a
Targeted-Attention stream is given the hands. Generalised to any layout and data set:

1. **weak classes**: accuracy below the split's mean per-class accuracy by more than
   ``max(WEAK_MARGIN, half the per-class standard deviation)``, at most a third of the
   classes (the worst first);
2. for each candidate joint group (the layout's groups except ``torso``, the reference that
   motion is measured against), pooled over the weak classes:
   - ``share``: the group's part of the weak classes' input motion (of all their joints');
   - ``emphasis``: its amplification in the decoded layers (mean over the layers after the
     first, which is nearly the input itself, weighted by each class's motion in the group).
     The display scale makes every layer reproduce the split's motion at 1 on average, so
     below 1 the model plays the group's motion down;
3. a group **qualifies** when it carries at least ``MIN_SHARE`` of the weak classes' motion
   and its emphasis is at most ``MAX_EMPHASIS``: large motion the model plays down. The
   suggestion is the qualifying group with the largest ``share * (1 - emphasis)`` (the
   smaller group on a tie). None qualifies: nothing stands out.

Every number behind the choice goes into the finding, so a reader can check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WEAK_MARGIN = 0.05
MIN_SHARE = 0.2
MAX_EMPHASIS = 0.85


@dataclass(frozen=True)
class Finding:
    """Attributes:
        weak_classes: names of the weak classes, weakest first.
        evidence: per candidate group ``{group, joints, share, emphasis, qualifies, score}``
            for the weak classes.
        group: the suggested group, or None; ``joints``: its joint indices (empty: none).
        reason: one sentence: why this group, or why nothing stands out.
    """

    weak_classes: list[str]
    evidence: list[dict[str, Any]] = field(default_factory=list)
    group: str | None = None
    joints: list[int] = field(default_factory=list)
    reason: str = ""


def weak_classes(accuracy: np.ndarray, support: np.ndarray) -> list[int]:
    """Indices of the weak classes (module docstring, step 1), weakest first."""
    seen = support > 0
    if seen.sum() < 2:
        return []
    acc = accuracy[seen]
    margin = max(WEAK_MARGIN, 0.5 * float(np.std(acc)))
    limit = max(1, int(seen.sum()) // 3)
    candidates = [i for i in np.argsort(accuracy, kind="stable")
                  if seen[i] and accuracy[i] < acc.mean() - margin]
    return [int(i) for i in candidates[:limit]]


def find_target(classes: list[str], accuracy: np.ndarray, support: np.ndarray,
                groups: dict[str, tuple[int, ...]], energy_in: np.ndarray,
                energy_total: np.ndarray, emphasis_by_group: np.ndarray) -> Finding:
    """The finding (module docstring).

    Args:
        accuracy, support: per class ``(C,)``.
        groups: candidate groups (name -> joints), in the order of the last axes below.
        energy_in: body-relative input motion energy per class and group ``(C, G)``.
        energy_total: the same over all joints ``(C,)`` (groups may overlap).
        emphasis_by_group: per class, layer and group ``(C, L, G)`` (NaN where undefined).
    """
    weak = weak_classes(accuracy, support)
    if not weak:
        return Finding([], reason="no class is clearly weaker than the others (every class is "
                                  f"within {WEAK_MARGIN:.0%} or half a standard deviation of "
                                  "the mean per-class accuracy)")
    names = [classes[i] for i in weak]
    energy = energy_in[weak].sum(axis=0)  # (G,)
    total = energy_total[weak].sum()
    share = energy / total if total > 0 else np.zeros_like(energy)
    layers = emphasis_by_group.shape[1]
    deep = slice(1, None) if layers > 1 else slice(None)
    with np.errstate(invalid="ignore"):
        # weight each weak class's emphasis by its input motion in the group
        weights = energy_in[weak][:, None, :]  # (W, 1, G)
        values = emphasis_by_group[weak][:, deep, :]  # (W, L', G)
        valid = np.isfinite(values)
        num = np.where(valid, values * weights, 0.0).sum(axis=(0, 1))
        den = np.where(valid, weights, 0.0).sum(axis=(0, 1))
        emphasis = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)  # (G,)
    evidence = []
    for g, (group, joints) in enumerate(groups.items()):
        qualifies = bool(share[g] >= MIN_SHARE and np.isfinite(emphasis[g])
                         and emphasis[g] <= MAX_EMPHASIS)
        score = float(share[g] * (1.0 - emphasis[g])) if qualifies else None
        evidence.append({"group": group, "joints": list(joints), "share": float(share[g]),
                         "emphasis": _finite(emphasis[g]), "qualifies": qualifies,
                         "score": score})
    chosen = [e for e in evidence if e["qualifies"]]
    if not chosen:
        return Finding(names, evidence, reason=(
            "nothing stands out: no joint group carries at least "
            f"{MIN_SHARE:.0%} of the weak classes' motion while the decoded layers play it down "
            f"(emphasis <= {MAX_EMPHASIS})"))
    best = max(chosen, key=lambda e: (e["score"], -len(e["joints"])))
    return Finding(names, evidence, best["group"], best["joints"], reason=(
        f"the weak classes ({', '.join(names)}) move their {best['group']} a lot "
        f"({best['share']:.0%} of their motion) but the decoded layers reproduce that motion "
        f"at only {best['emphasis']:.2f}x (1 = the layers' average): the model plays the "
        f"{best['group']} down where these classes need them"))


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
