"""pbi_taskflow.airflow.heap: the triggerer's start-up heap is frozen once per process, unless turned off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pbi_taskflow.airflow import heap as _heap


@pytest.fixture(autouse=True)
def _fresh_heap_state() -> Iterator[None]:
    _heap.reset()
    yield
    _heap.reset()


def test_first_call_freezes_the_heap_and_later_calls_do_nothing() -> None:
    """The objects alive at the first call go to the permanent generation; the second call changes nothing."""
    assert _heap.freeze_once() > 0
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert _heap.freeze_once() == 0
    assert gc.get_freeze_count() <= frozen  # nothing more was frozen


def test_objects_created_after_the_freeze_are_still_collected() -> None:
    """Only the start-up heap is frozen: a cycle created afterwards is collected as usual."""
    _heap.freeze_once()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    del node
    assert gc.collect() >= 1


def test_option_false_leaves_garbage_collection_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """[pbi_taskflow] triggerer_gc_freeze = False: nothing is frozen."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__TRIGGERER_GC_FREEZE", "False")
    assert _heap.freeze_once() == 0
    assert gc.get_freeze_count() == 0


def test_a_value_that_is_not_a_boolean_is_an_error_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped value fails clearly instead of silently freezing."""
    monkeypatch.setenv("AIRFLOW__PBI_TASKFLOW__TRIGGERER_GC_FREEZE", "flase")
    with pytest.raises(Exception, match="triggerer_gc_freeze"):
        _heap.freeze_once()
    assert gc.get_freeze_count() == 0
