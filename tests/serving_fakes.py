"""Test-only models for the real server (gunicorn + Flask, ``sagebert.container.serve.main``).

``python -m serving_fakes NAME`` (with tests/ on sys.path) replaces ``sagebert.serving.inference.model_fn``
by the fake NAME, binds to loopback instead of every interface (or to SAGEBERT_TEST_BIND_HOST, for a
run inside the image), and runs the production entry point unchanged: the server, its workers, its
micro-batcher and its timeouts are the real ones, only what answers inside the forward pass is not
a BERT.

- echo: instant; each text's probabilities come from a CRC of the text, so a client can check
  that every answer belongs to its own record.
- blocking: like echo, but a forward pass holding a text that contains "block" never returns.
- slow: like echo, but a forward pass takes SLOW_SECONDS per text.
- slow-loading: like echo, after LOAD_SECONDS of loading.
- exploding: like echo, but a forward pass holding a text that contains "explode" raises, and one
  holding "hold" waits until the test opens the FIFO named by HOLD_FIFO for writing and closes it
  (so requests can be queued behind it and merged). Each pass logs how many texts it held and
  whether the marker was among them.
- gated-encoding: like echo, but encoding a text that contains "hold" waits on the HOLD_FIFO gate.
- failing: loading fails with a ModelSourceError.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import zlib

from sagebert.codecs import Prediction

LABELS = ["Not a disaster", "Real disaster"]


def expected_probability(text: str) -> float:
    """The probability of "Real disaster" the echo model gives ``text`` (rounded as the server does)."""
    return round((zlib.crc32(text.encode("utf-8")) % 10_007) / 10_007, 6)


class EchoModel:
    label_names = LABELS
    intra_op_threads = 1

    def tokenize(self, texts):
        return list(texts)

    def forward(self, texts):
        predictions = []
        for text in texts:
            p = expected_probability(text)
            label = int(p > 0.5)
            predictions.append(Prediction(LABELS[label], label, (1 - p, p), (0.0, 0.0), False))
        return predictions


class BlockingModel(EchoModel):
    def forward(self, texts):
        if any("block" in text for text in texts):
            threading.Event().wait()  # never returns: a stuck forward pass
        return super().forward(texts)


class SlowModel(EchoModel):
    def forward(self, texts):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.05")) * len(texts))
        return super().forward(texts)


class ExplodingModel(EchoModel):
    def forward(self, texts):
        marked = any("explode" in text for text in texts)
        print(f"exploding model: a forward pass of {len(texts)} text(s), marker {marked}", file=sys.stderr, flush=True)
        if any("hold" in text for text in texts):
            with open(os.environ["HOLD_FIFO"], "rb") as gate:  # blocks until the test opens the other end
                gate.read()  # until the test closes it
        if marked:
            raise RuntimeError("this model cannot take a text that says explode")
        return super().forward(texts)


class GatedEncodingModel(EchoModel):
    def tokenize(self, texts):
        if any("hold" in text for text in texts):
            with open(os.environ["HOLD_FIFO"], "rb") as gate:  # blocks until the test opens the other end
                gate.read()
        return super().tokenize(texts)


FAKES = {
    "blocking": BlockingModel,
    "slow": SlowModel,
    "exploding": ExplodingModel,
    "gated-encoding": GatedEncodingModel,
}


def _loader(name: str):
    def load(model_dir, precision="auto", batch_size=32):
        if name == "failing":
            from sagebert.errors import ModelSourceError

            raise ModelSourceError(f"{model_dir} holds no model: config.json is missing (test).", "Deploy a model.")
        if name == "slow-loading":
            time.sleep(float(os.environ.get("LOAD_SECONDS", "3")))
        return FAKES.get(name, EchoModel)()

    return load


def main(name: str) -> int:
    from sagebert.container import serve
    from sagebert.serving import inference

    inference.model_fn = _loader(name)
    serve.BIND_HOST = os.environ.get("SAGEBERT_TEST_BIND_HOST", "127.0.0.1")  # 0.0.0.0 inside a container
    return serve.main([])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
