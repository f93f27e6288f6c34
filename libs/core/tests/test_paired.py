from tracewheel.core.paired import PairedSplit, TaskSplit


def test_the_split_counts_tasks_only_one_model_solved() -> None:
    split = PairedSplit.of(["t1", "t2", "t5"], ["t2", "t3", "t4"])
    assert (split.won, split.lost, split.both) == (2, 2, 1)
    assert PairedSplit.of([], []) == PairedSplit(0, 0, 0)


def test_the_sign_test_two_sided() -> None:
    assert PairedSplit(0, 0, 3).p_two_sided() == 1.0
    assert PairedSplit(3, 3, 0).p_two_sided() == 1.0
    assert PairedSplit(10, 0, 0).p_two_sided() == 2 / 2**10
    assert PairedSplit(0, 10, 0).p_two_sided() == PairedSplit(10, 0, 0).p_two_sided()
    assert PairedSplit(4, 1, 0).p_two_sided() == 2 * (1 + 5) / 2**5


def test_the_sign_test_one_sided() -> None:
    assert PairedSplit(0, 0, 5).p_greater() == 1.0  # no task differs: no evidence
    assert PairedSplit(6, 1, 0).p_greater() == (7 + 1) / 2**7  # a demo round 1 against its base model
    assert PairedSplit(1, 0, 6).p_greater() == 0.5  # a demo round 2 against its round 1
    assert PairedSplit(0, 4, 0).p_greater() == 1.0  # only losses
    assert PairedSplit(5, 0, 0).p_greater() == 1 / 2**5


def test_the_task_split_names_the_tasks_the_counts_count() -> None:
    split = TaskSplit.of(["t3", "t1", "t2", "t3"], ["t2", "t4", "t5", "t1"])
    assert split == TaskSplit(won=("t3",), lost=("t4", "t5"), both=("t1", "t2"))
    assert split.counts() == PairedSplit(won=1, lost=2, both=2)
    assert PairedSplit.of(["t3", "t1", "t2"], ["t2", "t4", "t5", "t1"]) == split.counts()
