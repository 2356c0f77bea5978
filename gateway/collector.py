"""
The garbage collector's settings for a server of many long-lived connections.

CPython's cyclic collector runs when allocations outnumber deallocations by
its first threshold (700), in the middle of whatever the event loop is doing:
every object of the turn in progress (frames being fanned out, their lists
and tuples) is then alive, survives, and is promoted; a tenth of those
collections promote again, into the old generation. Once promotions reach a
quarter of the old generation, a full collection traverses all of it: every
connection's objects (about 80 each), 100–150 ms with 2,000 connections,
stalling every delivery behind it.

So the gateway collects the young generation less often: each collection
costs more (a few milliseconds) but promotes no more, so the old generation
grows ten times slower and full collections become rare. And what start-up
made (modules, classes, the wiring) is frozen, outside every collection.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def tune_collector() -> None:
    """Freeze the objects made so far and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
