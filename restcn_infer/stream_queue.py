"""The due windows of all streams waiting for a session call, per owner, bounded and fair.

A window joins its owner's queue (an owner: a server client, or None). Two bounds keep the
memory fixed under any input: ``max_pending_per_owner`` (the owner's oldest window is dropped)
and ``max_pending`` for all owners together (the oldest window of the longest queue is dropped);
each drop is counted in :attr:`ReadyQueue.dropped`. :meth:`ReadyQueue.take` serves owners
round-robin, one window of each in turn, so one flooding owner cannot starve the others.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable

from restcn_infer.stream_types import PendingWindow


def check_at_least_one(name: str, value: int) -> None:
    """Refuse a count bound below 1 (0 would refuse or drop everything)."""
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


class ReadyQueue:
    """Per-owner FIFO queues of :class:`PendingWindow`, served round-robin."""

    def __init__(self, max_pending: int, max_pending_per_owner: int | None) -> None:
        self._queues: OrderedDict[Hashable, deque[PendingWindow]] = OrderedDict()
        self._count = 0
        self.dropped = 0  # windows dropped to keep the bounds
        self.set_bounds(max_pending, max_pending_per_owner)

    def set_bounds(self, max_pending: int, max_pending_per_owner: int | None) -> None:
        """Change the bounds (windows already queued stay until the next :meth:`add`).

        Raises:
            ValueError: a bound below 1 (``max_pending_per_owner`` None: no per-owner bound).
        """
        check_at_least_one("max_pending", max_pending)
        if max_pending_per_owner is not None:
            check_at_least_one("max_pending_per_owner", max_pending_per_owner)
        self.max_pending = int(max_pending)
        self.max_pending_per_owner = max_pending_per_owner

    def __len__(self) -> int:
        """Windows waiting, all owners together."""
        return self._count

    def of(self, owner: Hashable) -> int:
        """Windows of ``owner`` waiting."""
        queue = self._queues.get(owner)
        return len(queue) if queue else 0

    def add(self, pending: PendingWindow) -> None:
        """Queue a window, dropping the oldest one a bound says must go."""
        queue = self._queues.setdefault(pending.owner, deque())
        if self.max_pending_per_owner is not None and len(queue) >= self.max_pending_per_owner:
            queue.popleft()
            self._count -= 1
            self.dropped += 1
        if self._count >= self.max_pending:
            owner, longest = max(self._queues.items(), key=lambda item: len(item[1]))
            longest.popleft()
            self._count -= 1
            self.dropped += 1
            if not longest and owner != pending.owner:  # take() expects no empty queue
                del self._queues[owner]
        queue.append(pending)
        self._count += 1

    def drop_owner(self, owner: Hashable) -> None:
        """Forget every window of ``owner`` (not counted as dropped: nobody waits for them)."""
        queue = self._queues.pop(owner, None)
        if queue:
            self._count -= len(queue)

    def take(self, limit: int | None = None) -> list[PendingWindow]:
        """Remove and return windows, at most ``limit``, owners served round-robin (one window
        of each owner in turn, the next call starting after the last owner served); a single
        owner's windows come in the order they were queued."""
        taken: list[PendingWindow] = []
        limit = self._count if limit is None else limit
        while self._queues and len(taken) < limit:
            owner, queue = next(iter(self._queues.items()))
            if len(self._queues) == 1:  # one owner: its windows in push order
                while queue and len(taken) < limit:
                    taken.append(queue.popleft())
            else:
                taken.append(queue.popleft())
            if queue:
                self._queues.move_to_end(owner)
            else:
                del self._queues[owner]
        self._count -= len(taken)
        return taken
