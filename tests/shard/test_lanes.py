"""Lanes and the shard completion tracker: table-driven scenarios and a seeded oracle check."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest

from esm.shard.lanes import CompletionTracker, dynamodb_lane_key, lane_for, lane_for_keyless, sequence_order

# A Kinesis sequence number: 56 digits, far past 64 bits.
BIG = "49590338271490256608559692538361571095921575989136588898"
BIGGER = "49590338271490256608559692538361571095921575989136588899"


@dataclass(frozen=True)
class Dispatch:
    lane: int
    sequence_number: str


@dataclass(frozen=True)
class Complete:
    lane: int
    ticket: int
    # What `completed` returns: the new checkpoint, or None when it did not move.
    expected: str | None


Step = Dispatch | Complete


def dispatch(tracker: CompletionTracker[str], lane: int, sequence_number: str) -> int:
    """Streams dispatch records by sequence number; the tracker is told its order."""
    return tracker.dispatched(lane, sequence_number, sequence_order(sequence_number))


def run(tracker: CompletionTracker[str], steps: list[Step]) -> None:
    """Carries out the steps, checking that tickets count up from 0 and each completion's result."""
    tickets = 0
    for number, step in enumerate(steps):
        if isinstance(step, Dispatch):
            assert dispatch(tracker, step.lane, step.sequence_number) == tickets, f"step {number}"
            tickets += 1
        else:
            assert tracker.completed(step.lane, step.ticket) == step.expected, f"step {number}: {step}"


@pytest.mark.parametrize(
    ("lanes", "steps", "checkpoint", "outstanding"),
    [
        pytest.param(
            1,
            [
                Dispatch(0, "1"),
                Dispatch(0, "2"),
                Complete(0, 0, "1"),
                Dispatch(0, "3"),
                Complete(0, 1, "2"),
                Complete(0, 2, "3"),
            ],
            "3",
            0,
            id="single lane: every completion moves the checkpoint",
        ),
        pytest.param(
            1,
            [Dispatch(0, "5"), Dispatch(0, "6"), Dispatch(0, "7"), Complete(0, 2, "7")],
            "7",
            0,
            id="single lane: a batch completed at once",
        ),
        pytest.param(
            2,
            [
                Dispatch(0, "10"),  # ticket 0
                Dispatch(1, "20"),  # 1
                Dispatch(0, "30"),  # 2
                Dispatch(1, "40"),  # 3
                Complete(1, 3, None),  # lane 1 is done, but ticket 0 (lane 0) is not
                Complete(0, 0, "20"),  # 0 done, 1 done by lane 1, 2 still in lane 0
                Complete(0, 2, "40"),  # the slower lane catches up: jump over lane 1's records
            ],
            "40",
            0,
            id="two lanes out of order: the checkpoint waits for the slower lane, then jumps",
        ),
        pytest.param(
            2,
            [
                Dispatch(0, "1"),
                Dispatch(1, "2"),
                Dispatch(1, "3"),
                Complete(1, 2, None),
                Dispatch(1, "4"),
                Complete(1, 3, None),
            ],
            None,
            4,
            id="a lane that never completes holds the checkpoint back",
        ),
        pytest.param(
            2,
            [
                Dispatch(0, "100"),  # lane 0's batch: tickets 0-3
                Dispatch(0, "101"),
                Dispatch(0, "102"),
                Dispatch(0, "103"),
                Dispatch(1, "104"),  # 4
                Complete(1, 4, None),
                Complete(0, 1, "101"),  # a partial batch response: the head of the batch succeeded
                Complete(0, 2, "102"),  # the retried remainder, a record at a time (bisected)
                Complete(0, 3, "104"),  # then the rest, and lane 1's record with it
            ],
            "104",
            0,
            id="partial completion within a batch",
        ),
        pytest.param(
            2,
            [
                Dispatch(0, "1"),
                Dispatch(1, "2"),
                Complete(0, 0, "1"),
                Complete(0, 0, None),
                Complete(1, 1, "2"),
                Complete(1, 1, None),
            ],
            "2",
            0,
            id="a completion reported twice is idempotent",
        ),
        pytest.param(
            3,
            [
                Dispatch(2, "1"),
                Dispatch(0, "2"),
                Dispatch(2, "3"),
                Complete(0, 1, None),
                Complete(2, 0, "2"),
                Complete(2, 2, "3"),
            ],
            "3",
            0,
            id="an unused lane does not hold the checkpoint",
        ),
        pytest.param(
            3,
            [
                Dispatch(0, "1"),
                Dispatch(1, "2"),
                Dispatch(2, "3"),
                Dispatch(0, "4"),
                Complete(2, 2, None),
                Complete(1, 1, None),
                Complete(0, 0, "3"),
                Dispatch(1, "5"),
                Complete(1, 4, None),
            ],
            "3",
            2,
            id="three lanes, completed in reverse",
        ),
        pytest.param(
            2,
            [Dispatch(0, BIG), Dispatch(1, BIGGER), Complete(1, 1, None), Complete(0, 0, BIGGER)],
            BIGGER,
            0,
            id="sequence numbers past 64 bits are returned as given",
        ),
        pytest.param(
            2,
            [Dispatch(1, "0099"), Dispatch(0, "100"), Complete(1, 0, "0099")],
            "0099",
            1,
            id="leading zeros: ordered by value, returned as given",
        ),
        pytest.param(4, [], None, 0, id="nothing dispatched"),
    ],
)
def test_scenarios(lanes: int, steps: list[Step], checkpoint: str | None, outstanding: int) -> None:
    tracker: CompletionTracker[str] = CompletionTracker(lanes)
    run(tracker, steps)
    assert (tracker.checkpoint, tracker.outstanding) == (checkpoint, outstanding)


ONE_EACH = [Dispatch(0, "10"), Dispatch(1, "20")]


@pytest.mark.parametrize(
    ("steps", "call", "lane", "argument", "message"),
    [
        (ONE_EACH, "completed", 2, 0, "completed: lane 2 is out of range 0-1"),
        (ONE_EACH, "completed", -1, 0, "completed: lane -1 is out of range 0-1"),
        (ONE_EACH, "dispatched", 2, "30", "dispatched: lane 2 is out of range 0-1"),
        (ONE_EACH, "completed", 0, 2, "lane 0: ticket 2 was never dispatched"),
        (ONE_EACH, "completed", 0, -1, "lane 0: ticket -1 was never dispatched"),
        ([], "completed", 0, 0, "lane 0: ticket 0 was never dispatched"),
        (ONE_EACH, "completed", 0, 1, "lane 0: ticket 1 was dispatched to lane 1"),
        (ONE_EACH, "completed", 1, 0, "lane 1: ticket 0 was dispatched to lane 0"),
        # ticket 0 is covered by the checkpoint already: lane 1 still never had it
        (
            [*ONE_EACH, Complete(0, 0, "10")],
            "completed",
            1,
            0,
            "lane 1: ticket 0 was dispatched to another lane",
        ),
        (
            [Dispatch(0, "1"), Dispatch(0, "2"), Dispatch(0, "3"), Complete(0, 2, "3")],
            "completed",
            0,
            1,
            "lane 0 completed through ticket 1 after completing through 2",
        ),
        (ONE_EACH, "dispatched", 0, "20", "position 20 dispatched after 20"),
        (ONE_EACH, "dispatched", 0, "19", "position 19 dispatched after 20"),
        (ONE_EACH, "dispatched", 0, "", "sequence number '' is not a decimal sequence number"),
        (ONE_EACH, "dispatched", 0, "-30", "sequence number '-30' is not a decimal sequence number"),
        (ONE_EACH, "dispatched", 0, "3e9", "sequence number '3e9' is not a decimal sequence number"),
        (ONE_EACH, "dispatched", 0, "SHARD_END", "'SHARD_END' is not a decimal sequence number"),
        (ONE_EACH, "dispatched", 0, "٣٠", "'٣٠' is not a decimal sequence number"),
    ],
)
def test_bad_calls_raise_and_change_nothing(
    steps: list[Step], call: str, lane: int, argument: str | int, message: str
) -> None:
    tracker: CompletionTracker[str] = CompletionTracker(2)
    run(tracker, steps)
    before = (tracker.checkpoint, tracker.outstanding)
    with pytest.raises(ValueError, match=message):
        if call == "completed":
            assert isinstance(argument, int)
            tracker.completed(lane, argument)
        else:
            assert isinstance(argument, str)
            dispatch(tracker, lane, argument)
    assert (tracker.checkpoint, tracker.outstanding) == before
    # The tracker goes on: once both lanes complete all they were given, everything is covered.
    dispatched = [step for step in steps if isinstance(step, Dispatch)]
    lane_1_tickets = [ticket for ticket, step in enumerate(dispatched) if step.lane == 1]
    if lane_1_tickets:
        tracker.completed(1, lane_1_tickets[-1])
    assert tracker.completed(0, dispatch(tracker, 0, "1000")) == "1000"
    assert tracker.outstanding == 0


@pytest.mark.parametrize("lanes", [0, 11, -1])
def test_lane_count_outside_one_to_ten_is_refused(lanes: int) -> None:
    with pytest.raises(
        ValueError, match=f"ParallelizationFactor \\(lanes\\) must be between 1 and 10, got {lanes}"
    ):
        CompletionTracker(lanes)
    with pytest.raises(ValueError, match=f"must be between 1 and 10, got {lanes}"):
        lane_for("key", lanes)


def oracle_checkpoint(sequence_numbers: list[str], done: set[int]) -> str | None:
    """Brute force: the sequence number of the last record of the longest completed prefix."""
    prefix = 0
    while prefix < len(sequence_numbers) and prefix in done:
        prefix += 1
    return sequence_numbers[prefix - 1] if prefix else None


@pytest.mark.parametrize("seed", range(25))
def test_random_interleavings_of_three_lanes_match_the_oracle(seed: int) -> None:
    rand = random.Random(seed)
    lanes = 3
    tracker: CompletionTracker[str] = CompletionTracker(lanes)
    sequence_numbers: list[str] = []
    in_flight: list[list[int]] = [[] for _ in range(lanes)]  # per lane: dispatched, not completed
    completed_through = [-1] * lanes
    done: set[int] = set()
    next_sequence = int(BIG)
    for _ in range(400):
        action = rand.random()
        busy = [lane for lane in range(lanes) if in_flight[lane]]
        if action < 0.5 or not busy:
            lane = rand.randrange(lanes)
            next_sequence += rand.randint(1, 10**20)
            sequence_numbers.append(str(next_sequence))
            ticket = dispatch(tracker, lane, sequence_numbers[-1])
            assert ticket == len(sequence_numbers) - 1
            in_flight[lane].append(ticket)
        elif action < 0.9:
            # The lane completes some of its records, in its own order (a whole or a partial batch).
            lane = rand.choice(busy)
            count = rand.randint(1, len(in_flight[lane]))
            through = in_flight[lane][count - 1]
            done.update(in_flight[lane][:count])
            del in_flight[lane][:count]
            completed_through[lane] = through
            previous = tracker.checkpoint
            expected = oracle_checkpoint(sequence_numbers, done)
            assert tracker.completed(lane, through) == (expected if expected != previous else None)
        else:
            # A completion reported again.
            lane = rand.randrange(lanes)
            if completed_through[lane] >= 0:
                assert tracker.completed(lane, completed_through[lane]) is None
        expected_checkpoint = oracle_checkpoint(sequence_numbers, done)
        covered = sequence_numbers.index(expected_checkpoint) + 1 if expected_checkpoint else 0
        assert tracker.checkpoint == expected_checkpoint
        assert tracker.outstanding == len(sequence_numbers) - covered


def sequential_keys() -> list[str]:
    return [f"user-{number}" for number in range(10_000)]


def random_uuid_keys() -> list[str]:
    rand = random.Random(42)
    return [str(uuid.UUID(int=rand.getrandbits(128))) for _ in range(10_000)]


@pytest.mark.parametrize("keys", [sequential_keys(), random_uuid_keys()], ids=["sequential", "uuids"])
@pytest.mark.parametrize("lanes", range(2, 11))
def test_lane_for_spreads_keys_evenly(keys: list[str], lanes: int) -> None:
    counts = Counter(lane_for(key, lanes) for key in keys)
    mean = len(keys) / lanes
    assert sorted(counts) == list(range(lanes))
    assert all(abs(count - mean) <= 0.2 * mean for count in counts.values()), counts


# CRC-32 of the UTF-8 key, mod lanes: pinned, because a change of hash moves keys between lanes
# (and so reorders them) for every process that runs the new code next to the old.
@pytest.mark.parametrize(
    ("key", "lanes", "lane"),
    [
        ("a", 10, 7),
        ("a", 7, 4),
        ("user-1", 10, 4),
        ("user-1", 3, 2),
        ("partition-key-42", 10, 3),
        ("ü-key", 10, 6),
        ("", 10, 0),
        ('{"pk":{"S":"order#1"}}', 10, 8),
        ("anything", 1, 0),
        ("", 1, 0),
    ],
)
def test_lane_for_is_pinned(key: str, lanes: int, lane: int) -> None:
    assert lane_for(key, lanes) == lane


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"pk": {"S": "a"}, "sk": {"N": "1"}}, {"sk": {"N": "1"}, "pk": {"S": "a"}}),
        ({"id": {"B": b"\x00\xff"}}, {"id": {"B": "AP8="}}),  # boto3 bytes vs the event's base64
        ({"id": {"B": bytearray(b"\x00\xff")}, "n": {"N": "2"}}, {"n": {"N": "2"}, "id": {"B": "AP8="}}),
    ],
)
def test_dynamodb_lane_key_is_the_same_for_the_same_item(
    first: dict[str, object], second: dict[str, object]
) -> None:
    assert dynamodb_lane_key(first) == dynamodb_lane_key(second)


def test_dynamodb_lane_key_is_canonical_json() -> None:
    key = dynamodb_lane_key({"sk": {"N": "1"}, "pk": {"S": "ü"}})
    assert key == '{"pk":{"S":"ü"},"sk":{"N":"1"}}'
    assert lane_for(key, 10) == lane_for('{"pk":{"S":"ü"},"sk":{"N":"1"}}', 10)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"pk": {"S": "a"}}, {"pk": {"S": "b"}}),
        ({"pk": {"S": "1"}}, {"pk": {"N": "1"}}),
        ({"pk": {"S": "a"}}, {"id": {"S": "a"}}),
        ({"pk": {"S": "a"}, "sk": {"N": "1"}}, {"pk": {"S": "a"}, "sk": {"N": "2"}}),
    ],
)
def test_dynamodb_lane_key_tells_items_apart(first: dict[str, object], second: dict[str, object]) -> None:
    assert dynamodb_lane_key(first) != dynamodb_lane_key(second)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "dynamodb.Keys must name at least one key attribute, got an empty mapping"),
        ({"pk": {"S": object()}}, "dynamodb.Keys is not DynamoDB attribute-value JSON"),
        ({"pk": {"SS": {"a", "b"}}}, "dynamodb.Keys is not DynamoDB attribute-value JSON"),
    ],
)
def test_dynamodb_lane_key_refuses_what_is_not_keys(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dynamodb_lane_key(keys)


@pytest.mark.parametrize("lanes", [1, 2, 10])
def test_keyless_records_go_round_the_lanes_by_their_place(lanes: int) -> None:
    assert [lane_for_keyless(order, lanes) for order in range(1000, 1000 + 2 * lanes)] == [
        (1000 + n) % lanes for n in range(2 * lanes)
    ]


def test_a_tracker_holds_any_record_and_orders_by_what_it_is_told() -> None:
    # Kafka records are ordered by offset.
    tracker: CompletionTracker[dict[str, int]] = CompletionTracker(2)
    first, second, third = {"offset": 7}, {"offset": 8}, {"offset": 10}
    tickets = [
        tracker.dispatched(lane, rec, rec["offset"]) for lane, rec in ((0, first), (1, second), (0, third))
    ]
    assert tracker.completed(0, tickets[2]) is first  # lane 0 through offset 10; lane 1 holds 8
    assert tracker.completed(1, tickets[1]) is third
    with pytest.raises(ValueError, match="position 10 dispatched after 10"):
        tracker.dispatched(1, {"offset": 10}, 10)
