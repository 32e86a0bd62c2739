import pytest

from esm.shard.state import TRANSITIONS, InvalidTransition, ShardEvent, ShardLife, ShardState, next_state

S, E = ShardState, ShardEvent

REPEATS_IGNORED = {
    (S.SHARD_END, E.SHUTDOWN_REQUESTED),
    (S.LEASE_LOST, E.LEASE_LOST),
    (S.LEASE_LOST, E.SHUTDOWN_REQUESTED),
    (S.SHUTTING_DOWN, E.SHUTDOWN_REQUESTED),
    (S.SHUT_DOWN, E.LEASE_LOST),
    (S.SHUT_DOWN, E.SHUTDOWN_REQUESTED),
    (S.SHUT_DOWN, E.DRAINED),
}


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in ShardState for e in ShardEvent])
def test_every_state_event_pair(state: ShardState, event: ShardEvent) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) is TRANSITIONS[(state, event)]
    elif (state, event) in REPEATS_IGNORED:
        assert next_state(state, event) is state
    else:
        with pytest.raises(InvalidTransition, match=state.value):
            next_state(state, event)


def test_happy_path_of_a_kinesis_shard() -> None:
    state = S.WAITING_ON_PARENTS
    for event in (E.PARENTS_DONE, E.INITIALIZED, E.END_REACHED, E.DRAINED):
        state = next_state(state, event)
    assert state is S.SHUT_DOWN


def test_every_terminal_path_ends_shut_down() -> None:
    for state in (S.SHARD_END, S.LEASE_LOST, S.SHUTTING_DOWN):
        assert next_state(state, E.DRAINED) is S.SHUT_DOWN


@pytest.mark.parametrize("initial", [S.WAITING_ON_PARENTS, S.INITIALIZING])
def test_a_life_halts_when_it_stops_processing(initial: ShardState) -> None:
    life = ShardLife("s", initial)
    if initial is S.WAITING_ON_PARENTS:
        life.fire(E.PARENTS_DONE)
    life.fire(E.INITIALIZED)
    assert life.processing and not life.halt.is_set()
    life.fire(E.LEASE_LOST)
    assert life.lost and life.halt.is_set()
    life.fire(E.SHUTDOWN_REQUESTED)  # a shutdown racing the loss changes nothing
    assert life.state is S.LEASE_LOST
    life.fire(E.DRAINED)
    assert life.finished and life.lost  # it stays lost: the owner reads that after the end


@pytest.mark.parametrize(
    "initial", [s for s in ShardState if s not in (S.WAITING_ON_PARENTS, S.INITIALIZING)]
)
def test_a_life_starts_before_processing(initial: ShardState) -> None:
    with pytest.raises(ValueError, match=initial.value):
        ShardLife("s", initial)
