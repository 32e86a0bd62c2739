from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId


def assignment() -> PartitionAssignment:
    return PartitionAssignment(TopicPartitionId("orders", 3), epoch=1)


def test_completions_move_forward_only() -> None:
    a = assignment()
    assert a.complete(10) and a.completed == 10
    assert a.complete(5) and a.completed == 10  # a late, lower completion does not move it back
    assert a.complete(12) and a.completed == 12


def test_commit_is_offered_once_per_new_completion() -> None:
    a = assignment()
    assert a.take_commit() is None
    a.complete(10)
    assert a.take_commit() == 10
    a.mark_committed(10)
    assert a.take_commit() is None
    a.complete(11)
    assert a.take_commit() == 11


def test_the_group_committed_offset_counts_as_committed() -> None:
    a = assignment()
    a.mark_committed(50)  # read from the group when the epoch starts
    a.complete(40)
    assert a.take_commit() is None


def test_a_revoked_assignment_refuses_completions_and_offers_nothing() -> None:
    a = assignment()
    a.complete(10)
    a.revoke()
    assert not a.active
    assert a.complete(20) is False
    assert a.take_commit() is None
    assert a.completed == 10


def test_buffered_bytes_are_counted() -> None:
    a = assignment()
    assert a.add_buffered(100) == 100
    assert a.add_buffered(-40) == 60
    assert a.buffered_bytes == 60
    assert str(a.tp) == "orders-3"


def test_the_first_fetched_offset_is_where_reading_started() -> None:
    a = assignment()
    assert a.first_fetched is None
    a.fetched_from(7)
    a.fetched_from(20)  # later fetches do not move the start
    assert a.first_fetched == 7
