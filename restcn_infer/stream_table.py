"""The live streams of the stream engine (:mod:`restcn_infer.streaming`): who they are, whose
they are, how long they have been idle, and their slots in the shared ring buffers.

:class:`StreamTable` keeps the streams least recently fed first (idle ones are found at the
front), each owner's set (per-owner limits, forgetting a closed connection), and gives a
forgotten stream's ring slot back, except inside :meth:`StreamTable.holding` when frames of
that stream still wait to be written (a ``push_many``): then that slot is given back at the end.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container, Hashable, Iterator
from contextlib import contextmanager

from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.layouts import JointLayout, LayoutMapping, layout_mapping
from restcn_infer.spec import InputSpec
from restcn_infer.stream_ingest import RingPool
from restcn_infer.stream_types import StreamLimitError, StreamState

#: Layout mappings an engine keeps (one per source layout; layouts come from the registry).
MAX_CACHED_MAPPINGS = 64


def bind_layout(spec: InputSpec, num_joints: int, declared: JointLayout | None, source: str,
                mappings: dict[tuple, LayoutMapping] | None = None
                ) -> tuple[JointLayout, bool, LayoutMapping | None, str | None]:
    """The layout a new stream's frames are in (``declared``, else guessed from their
    ``num_joints``): ``(layout, guessed, mapping to the model's layout or None, notice)``; the
    notice says a mapping is used, once per stream. ``mappings``: the engine's cache, so that
    streams of one layout share one mapping object (their frames are then mapped in one call).

    Raises:
        SkeletonFormatError: no known layout has that many joints, or it does not map to the
            model's.
    """
    found, guessed = spec.resolve_layout(num_joints, declared, source)
    if found.name == spec.layout.name:
        return found, guessed, None, None
    key = (found.name, found.joint_names, tuple(sorted(found.aliases.items())))
    mapping = None if mappings is None else mappings.get(key)
    if mapping is None:
        try:
            mapping = layout_mapping(found, spec.layout)
        except LayoutError as exc:
            raise SkeletonFormatError(source, str(exc)) from None
        if mappings is not None:
            if len(mappings) >= MAX_CACHED_MAPPINGS:
                mappings.clear()
            mappings[key] = mapping
    how = (f"guessed from its {found.num_joints} joints; declare it with \"layout\""
           if guessed else "declared")
    derived = "".join(f"; {name} = mean of {', '.join(parts)}"
                      for name, parts in mapping.derived.items())
    notice = (f"joints in layout {found.name} ({how}), mapped by joint name to the model's "
              f"layout {spec.layout.name}{derived}")
    return found, guessed, mapping, notice


class StreamTable:
    """Live streams by id (``streams``, least recently fed first) and by owner."""

    def __init__(self, rings: RingPool) -> None:
        self.rings = rings
        self.streams: OrderedDict[Hashable, StreamState] = OrderedDict()
        self._owned: dict[Hashable, set[Hashable]] = {}
        self._held: list[int] | None = None  # slots of streams forgotten while holding
        self.mappings: dict[tuple, LayoutMapping] = {}  # source layout -> mapping (bind_layout)
        self._busy: Container[int] = ()  # while holding: slots with frames waiting

    def __len__(self) -> int:
        return len(self.streams)

    def of(self, owner: Hashable) -> int:
        """Live streams of ``owner``."""
        return len(self._owned.get(owner, ()))

    def check_room(self, source: str, owner: Hashable, max_streams: int,
                   max_per_owner: int | None) -> None:
        """Raise :class:`StreamLimitError` (naming ``source``) if a new stream of ``owner``
        would pass ``max_streams`` or the owner's share (call :meth:`evict_idle` first)."""
        if len(self.streams) >= max_streams:
            raise StreamLimitError(f"{source}: refused, {max_streams} streams are already live")
        if max_per_owner is not None and self.of(owner) >= max_per_owner:
            raise StreamLimitError(f"{source}: refused, this client already has "
                                   f"{max_per_owner} live streams")

    def open(self, stream: Hashable, layout: JointLayout, guessed: bool,
             mapping: LayoutMapping | None, bodies_in: int, owner: Hashable,
             max_streams: int) -> StreamState:
        """A new stream with a ring slot of its own (the pool grows to ``max_streams`` slots
        at most)."""
        state = StreamState(self.rings.take(max_streams), layout, guessed, mapping, bodies_in,
                            owner)
        self.streams[stream] = state
        self._owned.setdefault(owner, set()).add(stream)
        return state

    def touch(self, stream: Hashable) -> None:
        """The stream was just fed: last in the idle order."""
        self.streams.move_to_end(stream)

    def forget(self, stream: Hashable) -> None:
        """Drop a stream and give its ring slot back (at the end of :meth:`holding`)."""
        state = self.streams.pop(stream, None)
        if state is None:
            return
        if self._held is not None and state.slot in self._busy:
            self._held.append(state.slot)
        else:
            self.rings.release(state.slot)
        owned = self._owned.get(state.owner)
        if owned is not None:
            owned.discard(stream)
            if not owned:
                del self._owned[state.owner]

    def forget_owner(self, owner: Hashable) -> None:
        """Drop every stream of ``owner``."""
        for stream in list(self._owned.get(owner, ())):
            self.forget(stream)

    def evict_idle(self, now: float, timeout_s: float) -> list[Hashable]:
        """Forget streams not fed for longer than ``timeout_s``; returns their ids."""
        gone = []
        while self.streams:
            stream, state = next(iter(self.streams.items()))
            if now - state.last_seen <= timeout_s:
                break
            self.forget(stream)
            gone.append(stream)
        return gone

    @contextmanager
    def holding(self, busy: Container[int]) -> Iterator[None]:
        """Within: a forgotten stream whose slot is in ``busy`` (frames of it still wait to be
        written) keeps its slot until leaving, after the writes; any other forgotten stream's
        slot is reused at once (streams evicted as idle were not fed in this call: holding
        their slots back grew the pool by one slot per new stream)."""
        self._held, self._busy = [], busy
        try:
            yield
        finally:
            held, self._held, self._busy = self._held, None, ()
            for slot in held:
                self.rings.release(slot)
