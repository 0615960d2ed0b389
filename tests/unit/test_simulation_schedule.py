"""The simulation's schedule: one seed, one schedule; a prefix of it is a shorter run."""

from __future__ import annotations

from collections import Counter

from clearport.simulation.schedule import Fault, Op, schedule


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert schedule(42, 200) == schedule(42, 200)
    assert schedule(42, 200) != schedule(43, 200)


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    long = schedule(7, 300)
    for k in (0, 1, 17, 150, 299):
        assert schedule(7, k) == long[:k]


def test_every_operation_and_every_fault_is_drawn() -> None:
    ops: Counter[Op] = Counter()
    faults: Counter[Fault] = Counter()
    storms = 0
    for seed in range(40):
        for step in schedule(seed, 100):
            ops[step.op] += 1
            if step.fault is not None:
                faults[step.fault] += 1
            storms += step.declines
    assert set(ops) == set(Op)
    assert set(faults) == set(Fault)
    assert storms > 0


def test_a_step_says_what_it_is() -> None:
    step = next(s for s in schedule(3, 100) if s.table is not None)
    assert str(step.fault) in step.describe() and step.table in step.describe()


def test_without_faults_the_workload_is_the_same() -> None:
    faulty, calm = schedule(11, 150), schedule(11, 150, faults=False)
    assert [(s.op, s.merchant, s.target, s.per_mille) for s in faulty] == [
        (s.op, s.merchant, s.target, s.per_mille) for s in calm
    ]
    assert any(s.fault for s in faulty) and not any(s.fault for s in calm)
