"""The two group-model demonstrations, run small with fixed seeds (larger versions are marked slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "group_demos.py"
_spec = importlib.util.spec_from_file_location("group_demos", _PATH)
demos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demos)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: a second thread only spins, and on a loaded machine it costs several times the work.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_free_polycube_counts_match_the_known_sequence():
    # Free polycubes with reflections identified: 1, 1, 2, 7, 23 (OEIS A038119).
    assert [len(demos.free_polycubes(n)) for n in range(1, 6)] == [1, 1, 2, 7, 23]


def test_dna_data_plants_the_motif_on_the_requested_strand():
    rng = np.random.default_rng(0)
    motif = np.array([0, 0, 1, 2, 3, 3, 1, 0])
    letters = "ACGT"

    def strings(x):
        return ["".join(letters[k] for k in s.argmax(0).tolist()) for s in x]

    fwd = "".join(letters[k] for k in motif)
    rev = "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(fwd))
    x, y = demos.make_dna_data(200, 30, motif, "forward", rng)
    assert all(fwd in s for s, label in zip(strings(x), y) if label == 1)
    x, y = demos.make_dna_data(200, 30, motif, "reverse", rng)
    assert all(rev in s for s, label in zip(strings(x), y) if label == 1)
    assert torch.equal(demos.reverse_complement(demos.reverse_complement(x)), x)
    assert strings(demos.reverse_complement(x[:1]))[0] == "".join(
        {"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(strings(x[:1])[0])
    )


def test_rc_model_beats_plain_cnn_on_the_unseen_strand():
    r = demos.run_dna_demo(seed=0)
    assert r["rc_params"] == r["plain_params"]
    assert r["rc_acc_forward"] > 0.9 and r["plain_acc_forward"] > 0.9  # both learned the task
    assert r["rc_acc_reverse"] > 0.9
    assert r["plain_acc_reverse"] < 0.8
    assert r["rc_acc_reverse"] - r["plain_acc_reverse"] > 0.15


def test_oh_model_classifies_unseen_rotations_as_well_as_training_orientation():
    r = demos.run_polycube_demo(seed=0)
    assert r["classes"] == 7
    assert r["group_acc_test"] > 0.9
    assert abs(r["group_acc_rotated"] - r["group_acc_test"]) <= 0.02
    assert r["plain_acc_rotated"] < r["plain_acc_test"] - 0.3  # what the symmetry buys


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dna_demo_larger(seed):
    r = demos.run_dna_demo(seed=seed, n_train=2048, n_test=2048, channels=(16,), epochs=20)
    assert r["rc_params"] == r["plain_params"]
    assert r["rc_acc_reverse"] > 0.95 and r["rc_acc_reverse"] - r["plain_acc_reverse"] > 0.15


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_polycube_demo_more_seeds_and_data(seed):
    r = demos.run_polycube_demo(seed=seed, per_class_train=40, per_class_test=40)
    assert r["group_acc_test"] > 0.9
    assert abs(r["group_acc_rotated"] - r["group_acc_test"]) <= 0.02
