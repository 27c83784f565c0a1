"""The task-stream runner: orders, warm start, R[i, j] and the transfer metrics against hand-computed cases."""

import numpy as np
import pytest
import torch

from genlab.train.task_stream import StreamResult, Task, accuracy, run_stream, task_order, trainer_step


def test_orders():
    assert task_order("sequential", 3, 3) == [0, 1, 2]
    assert task_order("cyclic", 3, 7) == [0, 1, 2, 0, 1, 2, 0]
    r = task_order("random", 4, 1000, seed=1)
    assert set(r) == {0, 1, 2, 3} and r == task_order("random", 4, 1000, seed=1)
    assert task_order("reoccurring", 5, 5, reoccurrence=0.0) == [0, 1, 2, 3, 4]
    o = task_order("reoccurring", 50, 2000, seed=0, reoccurrence=0.8)
    new = sum(1 for i in range(1, len(o)) if o[i] not in o[:i])
    assert new < 2000 * 0.3  # ≈ 20% of steps bring a new task while new ones remain
    # a re-occurring step only re-trains a task already seen
    assert all(o[i] in o[:i] or o[i] == max(o[:i]) + 1 for i in range(1, 200))
    with pytest.raises(ValueError):
        task_order("sequential", 3, 4)
    with pytest.raises(ValueError):
        task_order("zigzag", 3, 3)
    with pytest.raises(ValueError):
        task_order("reoccurring", 3, 3, reoccurrence=1.5)


def test_metrics_by_hand_sequential():
    # 3 tasks, visited once each; R rows = after task 0, 1, 2
    R = np.array([[0.9, 0.2, 0.1],
                  [0.6, 0.8, 0.3],
                  [0.5, 0.7, 0.9]])
    s = StreamResult(order=[0, 1, 2], R=R, R0=np.array([0.1, 0.1, 0.2]))
    assert s.average_accuracy() == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    assert s.backward_transfer() == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)  # GEM's BWT
    assert s.forward_transfer() == pytest.approx(((0.2 - 0.1) + (0.3 - 0.2)) / 2)  # GEM's FWT
    assert s.forgetting() == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)  # Chaudhry et al.


def test_metrics_by_hand_with_reoccurrence():
    # order 0, 1, 0, 2: task 0 last trained at step 2; task 2 trained last (excluded)
    R = np.array([[0.9, 0.3, 0.2],
                  [0.4, 0.8, 0.3],
                  [0.95, 0.6, 0.25],
                  [0.7, 0.5, 0.9]])
    s = StreamResult(order=[0, 1, 0, 2], R=R, R0=np.array([0.5, 0.5, 0.5]))
    assert s.backward_transfer() == pytest.approx(((0.7 - 0.95) + (0.5 - 0.8)) / 2)
    assert s.forgetting() == pytest.approx(((0.95 - 0.7) + (0.8 - 0.5)) / 2)
    assert s.forward_transfer() == pytest.approx(((0.3 - 0.5) + (0.25 - 0.5)) / 2)
    assert s.average_accuracy() == pytest.approx((0.7 + 0.5 + 0.9) / 3)


def test_run_stream_warm_starts_and_records():
    # a scalar model w·x; task j: fit target c_j with one exact step each → R computed by hand
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    x = torch.ones(1, 1)
    tasks = [Task(f"t{c}", (x, torch.tensor([[float(c)]])), torch.nn.functional.mse_loss) for c in (1, 2)]
    seen = []

    def train(m, task, step):
        seen.append((step, float(m.weight.detach())))  # the weight each step starts from
        with torch.no_grad():
            m.weight.fill_(float(task.train[1]))

    closeness = lambda m, t: -abs(float(m.weight.detach()) - float(t.train[1]))  # noqa: E731
    res = run_stream(model, tasks, [0, 1, 0], train, closeness, measure=lambda m: {"w": float(m.weight.detach())})
    assert [e["w"] for e in res.extras] == [1.0, 2.0, 1.0]
    assert seen == [(0, 0.0), (1, 1.0), (2, 2.0)]  # warm start: each step starts where the last ended
    np.testing.assert_allclose(res.R0, [-1.0, -2.0])
    np.testing.assert_allclose(res.R, [[0, -1], [-1, 0], [0, -1]])
    np.testing.assert_allclose(res.losses, [[0, 1], [1, 0], [0, 1]])
    # one call for the whole row gives the same matrix
    torch.nn.init.zeros_(model.weight)
    rows = lambda m: [closeness(m, t) for t in tasks]  # noqa: E731
    res2 = run_stream(model, tasks, [0, 1, 0], train, evaluate_all=rows, record_losses=False)
    np.testing.assert_allclose(res2.R, res.R)
    assert np.isnan(res2.losses).all()


def test_trainer_step_and_accuracy_on_two_tasks():
    # task A labels by x1, task B by −x1 (conflicting): after A then B, A is forgotten
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    yA = (x[:, 0] > 0).long()
    yB = 1 - yA
    ce = torch.nn.functional.cross_entropy
    tasks = [Task("A", (x, yA), ce), Task("B", (x, yB), ce)]
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    res = run_stream(model, tasks, task_order("sequential", 2, 2), trainer_step(lr=0.5, steps=200))
    assert res.R[0, 0] > 0.95 and res.R[1, 1] > 0.95
    assert res.R[1, 0] < 0.05  # complete forgetting of A
    assert res.forgetting() > 0.9 and res.backward_transfer() < -0.9
    # accuracy of ±1 float targets uses the sign
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0]]))
    assert accuracy(lin, (x, torch.where(x[:, 0] > 0, 1.0, -1.0))) == 1.0


def test_bad_order_rejected():
    model = torch.nn.Linear(1, 1)
    t = Task("t", (torch.ones(1, 1), torch.ones(1, 1)), torch.nn.functional.mse_loss)
    with pytest.raises(ValueError):
        run_stream(model, [t], [1], lambda m, task, i: None)
    with pytest.raises(ValueError):
        run_stream(model, [t], [], lambda m, task, i: None)
