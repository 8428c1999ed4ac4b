"""Live traffic against the training data: the baseline training writes, and the report's statistics.

``baseline.json`` (written by training into the model directory, from the training channel) holds
no raw text: a histogram of text lengths in words, the label mix, and the hashes of the most
frequent words with the share of all training words they cover. ``summarize`` turns captured
requests (``aws.capture``) into per-variant label counts and confidence histograms, the
production/shadow agreement, and drift against the baseline: the population stability index
(PSI) of text lengths and of the label mix, and the drop in vocabulary coverage. Pure functions
(no torch): the CLI and training both use them.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .aws.capture import CapturedRequest

BASELINE_FILE = "baseline.json"
BASELINE_VERSION = 1
# Upper edges (in words) of the length bins; the last bin is open. Tweets are 1-30 words.
LENGTH_EDGES = (4, 8, 12, 16, 20, 24, 28, 32, 48)
TOP_WORDS = 1000
CONFIDENCE_BINS = 10
# PSI under 0.1: no real change; 0.1-0.25: a moderate shift; above 0.25: the population changed.
PSI_THRESHOLD = 0.25
# Vocabulary coverage may fall this much (absolute share of words) before it counts as drift.
COVERAGE_DROP_THRESHOLD = 0.15
_PSI_FLOOR = 1e-4  # an empty bin's share, so a bin seen on one side only costs a finite amount
_WORD = re.compile(r"[^\W_]+")
DISAGREEMENTS_LISTED = 20


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (any script): the unit of length and vocabulary."""
    return _WORD.findall(text.lower())


def word_hash(word: str) -> str:
    """A short one-way hash of a word: the baseline names frequent words without holding them."""
    return hashlib.blake2b(word.encode("utf-8"), digest_size=6).hexdigest()


def length_histogram(texts: Iterable[str]) -> list[int]:
    """Counts of texts per length bin (``LENGTH_EDGES``, in words; one more bin for longer ones)."""
    counts = [0] * (len(LENGTH_EDGES) + 1)
    for text in texts:
        size = len(words(text))
        counts[next((i for i, edge in enumerate(LENGTH_EDGES) if size <= edge), len(LENGTH_EDGES))] += 1
    return counts


def coverage(texts: Iterable[str], known: set[str]) -> float | None:
    """The share of the words of ``texts`` whose hash is in ``known``; None without words."""
    total = covered = 0
    for text in texts:
        for word in words(text):
            total += 1
            covered += word_hash(word) in known
    return covered / total if total else None


def compute_baseline(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> dict:
    """baseline.json's content for a training channel: lengths, label mix, top-word hashes, coverage."""
    frequency: Counter[str] = Counter(word_hash(w) for text in texts for w in words(text))
    top = [hashed for hashed, _ in frequency.most_common(TOP_WORDS)]
    label_counts = Counter(labels)
    return {
        "version": BASELINE_VERSION,
        "rows": len(texts),
        "length": {"unit": "words", "upper_edges": list(LENGTH_EDGES), "counts": length_histogram(texts)},
        "labels": {name: label_counts.get(i, 0) for i, name in enumerate(label_names)},
        "vocabulary": {
            "hash": "blake2b-48",
            "top": top,
            "coverage": round(coverage(texts, set(top)) or 0.0, 6),
        },
    }


def check_baseline(baseline: object) -> dict:
    """``baseline`` if it is a baseline.json this version reads; ValueError saying what is wrong."""
    if not isinstance(baseline, dict) or baseline.get("version") != BASELINE_VERSION:
        raise ValueError(f"not a sagebert baseline.json of version {BASELINE_VERSION}")
    for key in ("length", "labels", "vocabulary"):
        if not isinstance(baseline.get(key), dict):
            raise ValueError(f"baseline.json has no {key!r} object")
    if list(baseline["length"].get("upper_edges") or ()) != list(LENGTH_EDGES):
        raise ValueError("baseline.json's length bins are not the ones this sagebert uses")
    return baseline


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two histograms over the same bins (counts or shares)."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return 0.0
    value = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share = max(e / expected_total, _PSI_FLOOR)
        a_share = max(a / actual_total, _PSI_FLOOR)
        value += (a_share - e_share) * math.log(a_share / e_share)
    return value


@dataclass(frozen=True)
class Measure:
    """One drift measure: its statistic, the threshold, and whether it crossed it."""

    name: str
    kind: str
    statistic: float
    threshold: float
    detail: str

    @property
    def drifted(self) -> bool:
        return self.statistic > self.threshold

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "statistic": round(self.statistic, 6),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "detail": self.detail,
        }


def drift(
    baseline: Mapping,
    texts: Sequence[str],
    labels: Sequence[str],
    psi_threshold: float = PSI_THRESHOLD,
    coverage_drop: float = COVERAGE_DROP_THRESHOLD,
) -> list[Measure]:
    """Text length, vocabulary coverage and label-mix drift of live ``texts`` and predicted ``labels``."""
    measures = [
        Measure(
            "text_length",
            "psi",
            psi(baseline["length"]["counts"], length_histogram(texts)),
            psi_threshold,
            f"mean {sum(len(words(t)) for t in texts) / max(len(texts), 1):.1f} words live",
        )
    ]
    live_coverage = coverage(texts, set(baseline["vocabulary"]["top"]))
    trained = float(baseline["vocabulary"]["coverage"])
    if live_coverage is not None:
        measures.append(
            Measure(
                "vocabulary_coverage",
                "coverage_drop",
                trained - live_coverage,
                coverage_drop,
                f"top-{len(baseline['vocabulary']['top'])} training words cover {live_coverage:.1%} of live words "
                f"({trained:.1%} of training words)",
            )
        )
    names = list(baseline["labels"])
    live = Counter(labels)
    unknown = sorted(set(live) - set(names))
    measures.append(
        Measure(
            "label_mix",
            "psi",
            psi([baseline["labels"][n] for n in names] + [0] * len(unknown), [live[n] for n in names + unknown]),
            psi_threshold,
            ", ".join(f"{n} {live[n] / max(len(labels), 1):.0%}" for n in names + unknown) + " predicted live",
        )
    )
    return measures


@dataclass(frozen=True)
class VariantSummary:
    """What one variant answered: requests, texts, label counts and the confidence histogram."""

    name: str
    role: str
    requests: int
    texts: int
    labels: dict[str, int]
    confidence: list[int]

    def as_json(self) -> dict:
        return {
            "role": self.role,
            "requests": self.requests,
            "texts": self.texts,
            "labels": self.labels,
            "confidence_histogram": {"bins": CONFIDENCE_BINS, "counts": self.confidence},
        }


def summarize_variant(name: str, role: str, requests: Sequence[CapturedRequest]) -> VariantSummary:
    labels: Counter[str] = Counter()
    histogram = [0] * CONFIDENCE_BINS
    texts = 0
    for request in requests:
        texts += len(request.texts)
        for prediction in request.predictions:
            labels[prediction.label] += 1
            if prediction.confidence is not None:
                histogram[min(int(prediction.confidence * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)] += 1
    return VariantSummary(name, role, len(requests), texts, dict(sorted(labels.items())), histogram)


def roles(requests: Sequence[CapturedRequest], production: str | None, shadow: str | None) -> tuple[str, str | None]:
    """(production variant, shadow variant or None). Unnamed, the variant with the most requests is
    production: a shadow receives a sampled copy of production's traffic, never more."""
    counts = Counter(r.variant for r in requests)
    if production is None:
        others = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if v != shadow]
        production = others[0] if others else None
    if production is None:
        raise ValueError("no production variant's requests were captured")
    if shadow is None:
        rest = sorted(v for v in counts if v != production)
        shadow = rest[0] if rest else None
    return production, shadow


@dataclass(frozen=True)
class Agreement:
    """Production and shadow answers to the same texts: how many matched, and the texts they disagreed on."""

    compared: int
    agreed: int
    disagreements: list[dict]

    @property
    def share(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


def agreement(production: Sequence[CapturedRequest], shadow: Sequence[CapturedRequest]) -> Agreement:
    """Match each shadow request with production's by inference id, else by the request's content."""
    by_id = {r.inference_id: r for r in production if r.inference_id}
    by_body: dict[str, CapturedRequest] = {}
    for request in production:
        by_body.setdefault(request.body, request)
    compared = agreed = 0
    disagreements: list[dict] = []
    for copy in shadow:
        original = by_id.get(copy.inference_id) if copy.inference_id else None
        original = original or by_body.get(copy.body)
        if original is None or len(original.texts) != len(copy.texts):
            continue
        for text, ours, theirs in zip(original.texts, original.predictions, copy.predictions, strict=True):
            compared += 1
            if ours.label == theirs.label:
                agreed += 1
            elif len(disagreements) < DISAGREEMENTS_LISTED:
                disagreements.append({"text": text, "production": ours.label, "shadow": theirs.label})
    return Agreement(compared, agreed, disagreements)
