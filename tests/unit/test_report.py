"""The report's statistics: baseline.json from the training split, drift against it (none on the
test split; over the thresholds on longer texts, another language, one label only), and the
agreement of production and shadow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capture_files import LABELS, held_out_split, read_split, record, training_baseline

from sagebert import report
from sagebert.aws.capture import parse_line

REPO = Path(__file__).resolve().parents[2]
NO, YES = LABELS
# Tweet-like texts in German: the other language of the drift test (written for it).
GERMAN = [
    "Waldbrand in der Nähe von Freiburg, die Feuerwehr ist mit vielen Kräften vor Ort",
    "Heute Abend gehen wir ins Kino und danach essen wir Pizza",
    "Hochwasser an der Elbe: die Deiche halten bisher, aber die Lage bleibt angespannt",
    "Mein Zug hat schon wieder zwanzig Minuten Verspätung, unglaublich",
    "Erdbeben der Stärke fünf erschüttert die Region, keine Verletzten gemeldet",
    "Wer kommt morgen mit zum Fußballspiel? Ich habe noch zwei Karten",
    "Sturmwarnung für die Küste, Schulen bleiben geschlossen",
    "Das neue Album ist einfach großartig, ich höre es den ganzen Tag",
    "Explosion in einer Fabrik am Stadtrand, Rauchsäule weithin sichtbar",
    "Endlich Wochenende, ich schlafe einfach mal aus",
    "Lawinengefahr in den Alpen steigt nach starkem Schneefall deutlich",
    "Kaffee am Morgen vertreibt Kummer und Sorgen",
]


@pytest.fixture(scope="module")
def baseline() -> dict:
    return training_baseline()


@pytest.fixture(scope="module", name="test_split")
def split() -> tuple[list[str], list[str]]:
    return held_out_split()


def drifted(measures) -> set[str]:
    return {m.name for m in measures if m.drifted}


def test_the_baseline_is_small_and_holds_no_training_text(baseline):
    texts, _ = read_split(REPO / "local_test/data/training/train.csv")
    written = json.dumps(baseline)
    assert len(written) < 64 * 1024
    assert baseline["rows"] == len(texts) == sum(baseline["length"]["counts"])
    assert baseline["labels"] == {NO: 3264, YES: 2445}
    top = baseline["vocabulary"]["top"]
    assert len(top) == report.TOP_WORDS and all(len(h) == 12 and int(h, 16) >= 0 for h in top)
    assert "fire" not in written and report.word_hash("fire") in top  # hashed, never spelled out


def test_the_test_split_does_not_drift_from_the_training_split(baseline, test_split):
    measures = report.drift(baseline, *test_split)
    assert [m.name for m in measures] == ["text_length", "vocabulary_coverage", "label_mix"]
    assert drifted(measures) == set()
    assert all(m.statistic < m.threshold / 2 for m in measures)


def test_texts_ten_times_longer_cross_the_length_threshold(baseline, test_split):
    texts, labels = test_split
    assert drifted(report.drift(baseline, [" ".join([t] * 10) for t in texts], labels)) == {"text_length"}


def test_another_language_crosses_the_vocabulary_threshold(baseline):
    measures = report.drift(baseline, GERMAN, [NO, YES] * (len(GERMAN) // 2))
    assert "vocabulary_coverage" in drifted(measures)


def test_one_label_only_crosses_the_label_mix_threshold(baseline, test_split):
    texts, _ = test_split
    assert drifted(report.drift(baseline, texts, [YES] * len(texts))) == {"label_mix"}


def test_a_label_the_training_data_never_had_counts_as_label_drift(baseline, test_split):
    texts, labels = test_split
    assert "label_mix" in drifted(report.drift(baseline, texts, ["spam"] * len(texts)))


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert report.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    assert 0 < report.psi([50, 50], [60, 40]) < report.psi([50, 50], [90, 10])


def test_agreement_matches_by_inference_id_else_by_content_and_lists_the_disagreements():
    production = [
        parse_line(record(["fire downtown"], [YES], inference_id="id-1"), "AllTraffic"),
        parse_line(record(["lovely day", "flood warning"], [NO, YES]), "AllTraffic"),
        parse_line(record(["never copied"], [NO]), "AllTraffic"),
    ]
    shadow = [
        # same id, body sent through another route: matched by the id
        parse_line(record(["fire downtown"], [YES], inference_id="id-1", request_type="text/csv"), "Shadow"),
        parse_line(record(["lovely day", "flood warning"], [NO, NO]), "Shadow"),
    ]
    result = report.agreement(production, shadow)
    assert (result.compared, result.agreed, result.share) == (3, 2, pytest.approx(2 / 3))
    assert result.disagreements == [{"text": "flood warning", "production": YES, "shadow": NO}]


def test_without_names_the_busiest_variant_is_production():
    requests = [parse_line(record(["t"], [NO]), v) for v in ("Shadow", "AllTraffic", "AllTraffic")]
    assert report.roles(requests, None, None) == ("AllTraffic", "Shadow")
    assert report.roles(requests, None, "AllTraffic") == ("Shadow", "AllTraffic")
