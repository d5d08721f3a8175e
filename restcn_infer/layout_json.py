"""The JSON form of a joint layout, checked field by field: :func:`parse_layout` (used by
:meth:`restcn_infer.layouts.JointLayout.from_dict` and so by ``--layout my_layout.json``).

Every message names the document and the field, e.g. ``my.json field 'bones' give 'l_hand'
two parents ('chest' and 'head')``; joints may be named or indexed anywhere a joint is meant;
the bones must form one tree over all joints (each joint the child of at most one bone,
exactly one root, no cycle), as drawing and the bone modality need.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from restcn_infer.errors import LayoutError
from restcn_infer.fields import Fields
from restcn_infer.limits import MAX_JOINTS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class LayoutFields(NamedTuple):
    """The checked fields, ready for :class:`~restcn_infer.layouts.JointLayout`."""

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    groups: dict[str, tuple[int, ...]]
    aliases: dict[str, str]


def parse_layout(raw: Any, where: str) -> LayoutFields:
    """The fields of a layout's JSON form, every one checked (no built-in comparison)."""
    f = Fields(raw, where, LayoutError)
    name = f.str("name")
    if not _NAME.match(name):
        raise f.fail("name", f"must be 1-64 letters, digits, '_', '.' or '-', got {name!r}")
    joints = f.str_list("joints", unique=True)
    if not 1 <= len(joints) <= MAX_JOINTS:
        raise f.fail("joints", f"must list 1..{MAX_JOINTS} joints, got {len(joints)}")
    index = {joint: i for i, joint in enumerate(joints)}

    def joint(value: Any, what: str) -> int:
        if isinstance(value, str) and value in index:
            return index[value]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(joints):
            return value
        raise f.fail(what, f"names {value!r}, which is neither a joint name nor an index "
                           f"0..{len(joints) - 1}")

    raw_bones = f.raw.get("bones", [])
    if not isinstance(raw_bones, list) or len(raw_bones) > len(joints):
        raise f.fail("bones", "must be a list of [child, parent] pairs, one per joint but the "
                              "root")
    bones = []
    for i, pair in enumerate(raw_bones):
        if not isinstance(pair, list) or len(pair) != 2:
            raise f.fail("bones", f"entry {i} must be a [child, parent] pair, got {pair!r}")
        bones.append((joint(pair[0], f"bones[{i}]"), joint(pair[1], f"bones[{i}]")))
    _check_tree(bones, joints, f)
    groups = {}
    for group, members in f.object("groups", {}).items():
        if not _NAME.match(group):
            raise f.fail("groups", f"has a bad group name {group!r}")
        if not isinstance(members, list) or not members or len(members) > len(joints):
            raise f.fail(f"groups.{group}", "must be a non-empty list of joints")
        groups[group] = tuple(sorted({joint(m, f"groups.{group}") for m in members}))
    aliases = f.object("aliases", {})
    for joint_name, canonical in aliases.items():
        if joint_name not in index:
            raise f.fail("aliases", f"names {joint_name!r}, which is not one of the joints")
        if not isinstance(canonical, str) or not canonical:
            raise f.fail(f"aliases.{joint_name}", f"must be a non-empty string, got "
                                                  f"{canonical!r}")
    canonical = [aliases.get(joint, joint) for joint in joints]
    repeated = sorted({c for c in canonical if canonical.count(c) > 1})
    if repeated:
        raise f.fail("aliases", f"give several joints the same name {repeated}")
    return LayoutFields(name, tuple(joints), tuple(bones), groups, dict(aliases))


def _check_tree(bones: list[tuple[int, int]], joints: list[str], f: Fields) -> None:
    """``bones`` must be one tree over ``joints``: each joint the child of at most one bone,
    exactly one root, and every joint reached from it (so no cycles)."""
    parent: dict[int, int] = {}
    for child, par in bones:
        if child == par:
            raise f.fail("bones", f"joins {joints[child]!r} to itself")
        if child in parent:
            raise f.fail("bones", f"give {joints[child]!r} two parents "
                                  f"({joints[parent[child]]!r} and {joints[par]!r})")
        parent[child] = par
    if len(bones) != len(joints) - 1:
        raise f.fail("bones", f"must join {len(joints)} joints into one tree with "
                              f"{len(joints) - 1} [child, parent] pairs, got {len(bones)}")
    for start in range(len(joints)):  # walk up to the root; a cycle never gets there
        seen, node = set(), start
        while node in parent:
            if node in seen:
                raise f.fail("bones", f"form a cycle through {joints[node]!r}")
            seen.add(node)
            node = parent[node]
