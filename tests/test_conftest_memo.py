"""The suite's memo of MNIST-1D generation (conftest) gives what a fresh call gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import _memoized_make_dataset


def test_memoized_mnist1d_equals_a_fresh_call_and_leaves_the_same_random_states():
    md = pytest.importorskip("mnist1d.data", reason="needs the mnist1d package (extra genlab[data])")
    real = getattr(md.make_dataset, "__wrapped__", md.make_dataset)  # the package's own (the session patches it)
    args = md.get_dataset_args()
    args.num_samples = 100  # small: the memo does not depend on the size
    make = _memoized_make_dataset(real)
    first = make(args)
    after_first = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(7)
    again = make(args)  # from the memo
    after_again = (random.random(), np.random.rand())
    fresh = real(args)
    after_fresh = (random.random(), np.random.rand())
    for k in ("x", "y", "x_test", "y_test", "t"):
        assert np.array_equal(first[k], again[k]) and np.array_equal(first[k], fresh[k]), k
    assert after_first == after_again == after_fresh
    again["x"][0, 0] = 1e9  # a caller's in-place change does not reach the memo
    assert make(args)["x"][0, 0] != 1e9
