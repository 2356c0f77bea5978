"""How many objects the garbage collector tracks: what each full collection traverses."""

from __future__ import annotations

import gc


def tracked_objects() -> int:
    """Collect, then count the tracked objects."""
    # The collector stops tracking a tuple of atoms when it meets it; a tuple of
    # such tuples goes on the next pass, once its items are untracked.
    gc.collect()
    gc.collect()
    return len(gc.get_objects())
