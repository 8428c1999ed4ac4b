import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagebert.serving.batching import InferenceUnavailableError, MicroBatcher


class Recorder:
    """A forward pass that records what it was given, can be held at its first call, and fails on "bad"."""

    def __init__(self, hold_first: bool = False):
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.first_started = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items):
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.first_started.set()
            self.release.wait(10)
        if "bad" in items:
            raise RuntimeError("a text this model cannot take")
        return [item.upper() for item in items]


def submit_all(batcher, requests: dict) -> dict:
    """Submit every request from its own thread; name -> result or exception."""
    results = {}

    def client(name, items):
        try:
            results[name] = batcher.submit(items)
        except Exception as exc:
            results[name] = exc

    threads = [threading.Thread(target=client, args=item) for item in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


def wait_until(condition, what: str, timeout: float = 10) -> None:
    """Poll ``condition()`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.001)  # a poll interval: the condition decides


def queue_behind_a_held_pass(batcher, forward, requests: dict) -> dict:
    """Hold the model on a first request while ``requests`` queue up behind it, then release."""
    first = threading.Thread(target=batcher.submit, args=(["first"],))
    first.start()
    assert forward.first_started.wait(5)
    results = {}
    waiter = threading.Thread(target=lambda: results.update(submit_all(batcher, requests)))
    waiter.start()
    # The held pass and every request queued behind it: only then may the model go on.
    wait_until(lambda: batcher.pending() == 1 + len(requests), "every request queued")
    forward.release.set()
    waiter.join(20)
    first.join(5)
    return results


def test_a_lone_request_is_predicted_alone_and_in_order():
    batcher = MicroBatcher(lambda items: [t.upper() for t in items])
    assert batcher.submit(["a", "b"]) == ["A", "B"]


def test_requests_queued_while_the_model_is_busy_share_a_forward_pass():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward)
    results = queue_behind_a_held_pass(batcher, forward, {n: [n, n * 2] for n in "bcd"})
    assert results == {n: [n.upper(), (n * 2).upper()] for n in "bcd"}
    assert len(forward.calls) == 2 and sorted(forward.calls[1]) == sorted(["b", "bb", "c", "cc", "d", "dd"])


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    max_items=st.integers(1, 16),
    max_cost=st.integers(1, 50),
    merge=st.booleans(),
)
def test_every_request_gets_exactly_its_own_results_in_order_whatever_shares_its_passes(
    sizes, max_items, max_cost, merge
):
    calls = []

    def forward(items):
        calls.append(list(items))
        time.sleep(0.001)
        return [f"<{item}>" for item in items]

    batcher = MicroBatcher(forward, max_items=max_items, max_cost=max_cost, cost=len, merge=merge)
    requests = {f"r{r}": [f"r{r}-{i}" for i in range(size)] for r, size in enumerate(sizes)}
    results = submit_all(batcher, requests)
    assert results == {name: [f"<{item}>" for item in items] for name, items in requests.items()}
    for call in calls:  # every pass is within both caps (one item always goes, whatever its cost)
        assert len(call) <= max_items
        assert len(call) == 1 or sum(map(len, call)) <= max_cost


def test_a_long_request_is_served_in_slices_and_does_not_hold_back_a_short_one():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward, max_items=10, max_cost=10_000)
    long_request = [f"long{i}" for i in range(100)]
    results = queue_behind_a_held_pass(batcher, forward, {"long": long_request, "short": ["short"]})
    assert results["long"] == [t.upper() for t in long_request] and results["short"] == ["SHORT"]
    short_pass = next(i for i, call in enumerate(forward.calls) if "short" in call)
    assert short_pass <= 2  # served with the first or second slice of the long one, not after all ten
    assert all(len(call) <= 10 for call in forward.calls)


def test_a_merge_is_capped_by_cost_as_well_as_by_count():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward, max_items=64, max_cost=100, cost=len)
    queue_behind_a_held_pass(batcher, forward, {n: ["x" * 60] for n in range(4)})
    assert [len(call) for call in forward.calls[1:]] == [1, 1, 1, 1]  # 60 + 60 > 100: never two at once


def test_one_requests_failure_does_not_fail_the_requests_merged_with_it():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward)
    results = queue_behind_a_held_pass(batcher, forward, {"good1": ["a"], "bad": ["bad"], "good2": ["b", "c"]})
    assert results["good1"] == ["A"] and results["good2"] == ["B", "C"]
    assert isinstance(results["bad"], RuntimeError)
    assert batcher.submit(["still"]) == ["STILL"]


def test_a_stuck_forward_pass_fails_its_waiting_requests_with_a_503_and_is_reported():
    release = threading.Event()

    def forward(items):
        if "stuck" in items:
            release.wait(30)
        return items

    batcher = MicroBatcher(forward, stuck_after=1.0)
    started = time.monotonic()
    results = submit_all(batcher, {"stuck": ["stuck"]})
    assert isinstance(results["stuck"], InferenceUnavailableError) and results["stuck"].http_status == 503
    assert "stuck" in results["stuck"].message and time.monotonic() - started < 10
    assert batcher.stuck_for() > 1.0  # what /ping and the worker's heartbeat read
    release.set()
    wait_until(lambda: batcher.pending() == 0, "the stuck pass ending")
    assert batcher.stuck_for() == 0 and batcher.submit(["again"]) == ["again"]


def test_after_close_new_requests_are_refused_and_unfinished_ones_get_a_503_at_the_deadline():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward)
    results = {}
    clients = threading.Thread(target=lambda: results.update(submit_all(batcher, {"running": ["r"]})))
    clients.start()
    assert forward.first_started.wait(5)
    queued = threading.Thread(target=lambda: results.update(submit_all(batcher, {"queued": ["q"]})))
    queued.start()
    wait_until(lambda: batcher.pending() == 2, "the second request queued behind the held pass")
    batcher.close(time.monotonic() + 0.5)
    with pytest.raises(InferenceUnavailableError, match="shutting down"):
        batcher.submit(["new"])
    queued.join(10)
    clients.join(10)
    for name in ("running", "queued"):  # the one in a forward pass as well as the one behind it
        assert isinstance(results[name], InferenceUnavailableError) and "in time" in results[name].message
    assert batcher.refused == 3
    forward.release.set()


def test_without_merging_a_pass_holds_one_requests_slice():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward, merge=False, max_items=3)
    results = queue_behind_a_held_pass(batcher, forward, {"a": ["a1", "a2", "a3", "a4"], "b": ["b1"]})
    assert results == {"a": ["A1", "A2", "A3", "A4"], "b": ["B1"]}
    assert all({item[0] for item in call} in ({"a"}, {"b"}, {"f"}) for call in forward.calls)


def test_max_items_one_serves_every_item_alone():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward, max_items=1)
    queue_behind_a_held_pass(batcher, forward, {n: [n] for n in "abc"})
    assert sorted(map(tuple, forward.calls[1:])) == [("a",), ("b",), ("c",)]


def holds_within(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_by_default_every_pass_runs_on_the_model_thread():
    threads = []
    batcher = MicroBatcher(lambda items: threads.append(threading.current_thread().name) or list(items))
    assert batcher.submit(["a"]) == ["a"] and threads == ["sagebert-batcher"]


def test_a_lone_request_that_fits_one_pass_runs_it_in_its_own_thread_and_a_longer_one_on_the_model_thread():
    threads = []

    def forward(items):
        threads.append(threading.current_thread().name)
        return [t.upper() for t in items]

    batcher = MicroBatcher(forward, max_items=2, inline=True)
    assert batcher.submit(["a", "b"]) == ["A", "B"]  # idle model, one pass: no hand-off
    assert batcher.submit(["c", "d", "e"]) == ["C", "D", "E"]  # two passes: sliced by the model thread
    assert threads == [threading.current_thread().name, "sagebert-batcher", "sagebert-batcher"]
    assert batcher.take_queue_waits()[0] == 2 and batcher.pending() == 0


def test_a_stuck_pass_run_inline_is_reported_and_fails_the_requests_queued_behind_it():
    release, running = threading.Event(), threading.Event()
    where = {}

    def forward(items):
        if "stuck" in items:
            where["stuck"] = threading.current_thread().name
            running.set()
            release.wait(30)
        return [t.upper() for t in items]

    batcher = MicroBatcher(forward, stuck_after=1.0, inline=True)
    results = {}
    stuck = threading.Thread(target=lambda: results.update(submit_all(batcher, {"stuck": ["stuck"]})))
    stuck.start()
    assert running.wait(5)
    assert where["stuck"] != "sagebert-batcher"  # the request's own thread runs the pass
    started = time.monotonic()
    behind = submit_all(batcher, {"behind": ["behind"]})["behind"]  # queued: no second pass at once
    assert isinstance(behind, InferenceUnavailableError) and behind.http_status == 503
    assert "stuck" in behind.message and time.monotonic() - started < 10
    assert batcher.stuck_for() > 1.0 and batcher.busy_for() > 1.0  # what /ping and the heartbeat read
    batcher.close(time.monotonic() + 60)
    with pytest.raises(InferenceUnavailableError, match="shutting down"):
        batcher.submit(["new"])
    release.set()
    stuck.join(10)
    assert results["stuck"] == ["STUCK"]  # a pass that ends is answered, closing or not
    assert batcher.stuck_for() == 0 and batcher.pending() == 0


def test_requests_queued_behind_an_inline_pass_share_the_next_pass_on_the_model_thread():
    forward = Recorder(hold_first=True)
    batcher = MicroBatcher(forward, inline=True)
    first = threading.Thread(target=batcher.submit, args=(["first"],))
    first.start()
    assert forward.first_started.wait(5)
    results = {}
    waiter = threading.Thread(target=lambda: results.update(submit_all(batcher, {n: [n] for n in "bcd"})))
    waiter.start()
    assert holds_within(lambda: batcher.pending() == 4)  # three queued behind the inline pass
    forward.release.set()
    waiter.join(10)
    first.join(5)
    assert results == {n: [n.upper()] for n in "bcd"}
    assert forward.calls[0] == ["first"] and sorted(forward.calls[1]) == ["b", "c", "d"]


@pytest.mark.parametrize("inline", [False, True])
def test_memory_is_given_back_once_after_passes_stop_and_again_after_the_next_pass(monkeypatch, inline):
    from sagebert.serving import batching

    trims = []
    monkeypatch.setattr(batching, "_malloc_trim", lambda: lambda: trims.append(time.monotonic()))
    monkeypatch.setattr(batching, "IDLE_SECONDS", 0.05)
    batcher = MicroBatcher(lambda items: list(items), inline=inline)
    assert batcher.submit(["a"]) == ["a"]
    ended = time.monotonic()
    assert holds_within(lambda: len(trims) == 1)
    assert trims[0] - ended >= 0.045  # not before IDLE_SECONDS of idleness (its clock starts a moment earlier)
    assert not holds_within(lambda: len(trims) > 1, timeout=0.3)  # idle: nothing more to give back
    assert batcher.submit(["b"]) == ["b"]  # inline: only this pass can wake the model thread
    assert holds_within(lambda: len(trims) == 2)
