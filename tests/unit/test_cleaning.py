import pytest

from sagebert.training.cleaning import clean_text


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("Forest fire near La Ronge http://t.co/abc123 https://x.co/y www.example.com/z", "Forest fire near La Ronge"),
        ("@bbcmtd Wholesale Markets ablaze", "Wholesale Markets ablaze"),
        ("Bush &amp; Jeb &lt;3 &amp;amp;", "Bush & Jeb <3 &"),
        ("fire 🔥🔥 in the hills ❤️", "fire in the hills"),
        ("Let\x89Ûªs talk \x89ÛÒ now\x89Û_", "Let's talk — now…"),
        ("\x89ÛÏWe lose\x89Û\x9d", '"We lose"'),
        ("New BoltåÊCyclone", "New Bolt Cyclone"),
        ("cafÃ© crash", "café crash"),  # ordinary mojibake, repaired by ftfy
        ("  many   spaces\nand\tlines ", "many spaces and lines"),
        ("mail me at me@example.com", "mail me at me@example.com"),  # an address is not a mention
    ],
)
def test_clean_text(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_cleaning_is_idempotent_on_the_raw_competition_file():
    import csv

    from support import RAW_CSV

    with open(RAW_CSV, encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    cleaned = [clean_text(t) for t in texts]
    assert [clean_text(t) for t in cleaned] == cleaned
    assert not any("\x89" in t or "http" in t for t in cleaned)
