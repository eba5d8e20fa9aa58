"""Scratch buffers kept between calls, and the views of them kept with them."""

import copy
import pickle

import torch

from sphcnn.spectral import _workspace
from sphcnn.spectral._tables import SharedTables
from sphcnn.spectral._workspace import Workspace


def test_views_are_built_once_and_again_after_a_buffer_is_reallocated(monkeypatch):
    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    workspace, like, builds = Workspace(), torch.zeros(1), []

    def build():
        builds.append(1)
        return workspace.empty("a", (4,), like).numpy()

    first = workspace.views("key", like, build)
    assert workspace.views("key", like, build) is first and len(builds) == 1
    workspace.empty("a", (2,), like)  # fits: no reallocation, the views stay
    assert workspace.views("key", like, build) is first and len(builds) == 1
    bigger = workspace.empty("a", (8,), like)  # reallocated: views of the old buffer must go
    again = workspace.views("key", like, build)
    assert len(builds) == 2 and again is not first
    assert again.__array_interface__["data"][0] == bigger.data_ptr()
    workspace.clear()
    assert workspace.nbytes() == 0
    workspace.views("key", like, build)
    assert len(builds) == 3


def test_views_are_per_thread_and_not_copied(monkeypatch):
    import threading

    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    workspace, like = Workspace(), torch.zeros(1)
    mine = workspace.views("key", like, lambda: workspace.empty("a", (4,), like))
    theirs = []

    def on_another_thread():
        theirs.append(workspace.views("key", like, lambda: workspace.empty("a", (4,), like)))

    thread = threading.Thread(target=on_another_thread)
    thread.start()
    thread.join()
    assert theirs[0].data_ptr() != mine.data_ptr()
    assert copy.deepcopy(workspace).nbytes() == 0
    built = []
    copy.deepcopy(workspace).views("key", like, lambda: built.append(1))
    assert built == [1]


def test_off_the_cpu_views_are_built_every_call():
    workspace, like, builds = Workspace(), torch.zeros(1, device="meta"), []
    for _ in range(2):
        workspace.views("key", like, lambda: builds.append(1) or workspace.empty("a", (4,), like))
    assert len(builds) == 2


def test_shared_tables_derive_once_and_copies_and_pickles_start_without_them():
    tables, builds = SharedTables((torch.arange(4.0),)), []
    view = tables.derived("numpy", lambda: builds.append(1) or tables.tensors[0].numpy())
    assert tables.derived("numpy", lambda: builds.append(1)) is view and builds == [1]
    for clone in (copy.deepcopy(tables), pickle.loads(pickle.dumps(tables))):
        assert torch.equal(clone.tensors[0], tables.tensors[0]) and clone._derived == {}
