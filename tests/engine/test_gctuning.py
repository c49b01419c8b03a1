"""The collector settings a run works under, and that they are put back."""

import gc

from crm2erp.engine.gctuning import YOUNG_THRESHOLD, fewer_collections


def test_collects_less_inside_and_restores_after_nested_blocks():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        assert gc.get_freeze_count() > 0
        with fewer_collections():   # a nested run keeps the settings
            assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restores_when_the_block_fails():
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
