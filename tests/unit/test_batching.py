import threading
import time

import pytest

from sagebert.serving.batching import MicroBatcher


def queue_behind_the_first(threads, release):
    """Start the first thread (its forward pass blocks on ``release``), queue the others behind it, release, join."""
    threads[0].start()
    time.sleep(0.2)
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)
    release.set()
    for t in threads:
        t.join(5)


def test_a_lone_request_is_predicted_alone_and_in_order():
    batcher = MicroBatcher(lambda texts: [t.upper() for t in texts])
    assert batcher.submit(["a", "b"]) == ["A", "B"]


def test_requests_queued_while_the_model_is_busy_share_a_forward_pass():
    calls = []
    release = threading.Event()

    def predict(texts):
        calls.append(list(texts))
        if len(calls) == 1:
            release.wait(5)  # the first pass blocks while others queue up
        return [t + "!" for t in texts]

    batcher = MicroBatcher(predict)
    results = {}

    def client(name):
        results[name] = batcher.submit([name, name * 2])

    threads = [threading.Thread(target=client, args=(n,)) for n in "abcd"]
    queue_behind_the_first(threads, release)
    assert results == {n: [n + "!", n * 2 + "!"] for n in "abcd"}
    assert len(calls) == 2 and len(calls[1]) == 6  # b, c and d went through together


def test_an_error_reaches_every_request_of_the_batch_and_the_batcher_survives():
    def predict(texts):
        if "bad" in texts:
            raise RuntimeError("boom")
        return texts

    batcher = MicroBatcher(predict)
    with pytest.raises(RuntimeError, match="boom"):
        batcher.submit(["bad"])
    assert batcher.submit(["good"]) == ["good"]


def test_max_texts_one_serves_every_request_alone():
    calls = []
    release = threading.Event()

    def predict(texts):
        calls.append(list(texts))
        if len(calls) == 1:
            release.wait(5)
        return texts

    batcher = MicroBatcher(predict, max_texts=1)
    threads = [threading.Thread(target=batcher.submit, args=([n],)) for n in "abc"]
    queue_behind_the_first(threads, release)
    assert sorted(map(tuple, calls)) == [("a",), ("b",), ("c",)]
