"""frozen_heap: what exists before the block is frozen during it, unfrozen after."""

from __future__ import annotations

import gc

import pytest

from omni_journey.runner.heap import frozen_heap


def test_objects_are_frozen_during_the_block_and_released_after() -> None:
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_an_error_in_the_block_still_releases_them() -> None:
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_before_is_left_to_its_owner() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_heap():
            pass
        # not unfrozen (0), nor unfrozen and frozen again (more); frozen objects that
        # another thread of the test process frees meanwhile only lower the count
        assert 0 < gc.get_freeze_count() <= before
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
