import csv
import io
import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sagebert import codecs
from sagebert.codecs import Prediction, Predictions, decode, encode, negotiate_accept, output_format
from sagebert.errors import RequestError

# Any text a record may hold: commas, quotes, line breaks, U+2028/U+0085, emoji, blanks, long runs.
HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "   ",
        "\t",
        "text",
        "Text",
        "sentence",
        ",",
        '"',
        '""',
        "a,b",
        '"quoted"',
        "\u2028",
        "\x85",
        "😀",
        "\x00",
    ]
)
TEXTS = st.lists(
    st.one_of(st.text(max_size=40), HOSTILE, st.text(alphabet='ab ,"\n', max_size=300)), min_size=1, max_size=25
)
LINE_TEXTS = st.lists(st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t), min_size=1, max_size=25)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def csv_body(texts, header=None, terminator="\r\n", quoting=csv.QUOTE_MINIMAL):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=terminator, quoting=quoting)
    if header:
        writer.writerow(header)
    for text in texts:
        writer.writerow(["7", text] if header and len(header) == 2 else [text])
    return out.getvalue().encode()


# ---- N records in, exactly those N texts out, in order --------------------------------------------


@PROPERTY
@given(texts=TEXTS, ensure_ascii=st.booleans(), shape=st.sampled_from(["list", "inputs", "documents"]))
def test_json_bodies_give_every_text_in_order(texts, ensure_ascii, shape):
    if shape == "list":
        body = json.dumps(texts, ensure_ascii=ensure_ascii)
    elif shape == "inputs":
        body = json.dumps({"inputs": texts}, ensure_ascii=ensure_ascii)
    else:  # what batch transform's Line splitting sends: one JSON document per line
        body = "".join(json.dumps(t, ensure_ascii=ensure_ascii) + "\n" for t in texts)
    assert decode(body.encode(), "application/json") == texts


@PROPERTY
@given(texts=TEXTS, ensure_ascii=st.booleans(), wrap=st.sampled_from([None, "inputs", "text"]), crlf=st.booleans())
def test_jsonlines_bodies_give_one_text_per_line_in_order(texts, ensure_ascii, wrap, crlf):
    lines = [json.dumps(t if wrap is None else {wrap: t}, ensure_ascii=ensure_ascii) for t in texts]
    body = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    assert decode(body.encode(), "application/jsonlines") == texts


@PROPERTY
@given(texts=TEXTS, quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_csv_bodies_give_one_text_per_record_and_never_guess_a_header(texts, quoting):
    assert decode(csv_body(texts, quoting=quoting), "text/csv") == texts


@PROPERTY
@given(texts=TEXTS, columns=st.sampled_from([["text"], ["id", "text"], ["Text"]]))
def test_a_declared_csv_header_is_skipped_and_its_text_column_used(texts, columns):
    assert decode(csv_body(texts, header=columns), "text/csv; header=present") == texts


@PROPERTY
@given(texts=LINE_TEXTS)
def test_plain_text_in_batch_transform_gives_one_text_per_line(texts):
    body = "".join(t + "\n" for t in texts).encode()
    assert decode(body, "text/plain", plain_text_lines=True) == texts


@PROPERTY
@given(
    text=st.text(max_size=200).filter(lambda t: not t.endswith(("\r", "\n"))), end=st.sampled_from(["", "\n", "\r\n"])
)
def test_plain_text_is_one_text_whatever_it_holds(text, end):
    assume(text + end)  # an empty body is a 400 (below)
    assert decode((text + end).encode(), "text/plain") == [text]  # a final line break is not part of it


# ---- a record that cannot be scored fails the request, naming it ----------------------------------


@PROPERTY
@given(texts=LINE_TEXTS, data=st.data())
def test_a_lone_surrogate_is_a_400_naming_its_record(texts, data):
    position = data.draw(st.integers(0, len(texts) - 1))
    texts = [*texts[:position], texts[position] + "\ud800", *texts[position + 1 :]]
    body = json.dumps(texts)  # JSON can carry the half pair as \ud800
    with pytest.raises(RequestError) as info:
        decode(body.encode(), "application/json")
    assert info.value.http_status == 400 and f"Record {position + 1} " in info.value.message


@PROPERTY
@given(texts=LINE_TEXTS, data=st.data(), bad=st.sampled_from(["", "   ", "[1, 2]", "{", "not json", '"a" "b"', "7"]))
def test_a_jsonlines_record_without_a_text_is_a_400_naming_its_line(texts, data, bad):
    position = data.draw(st.integers(0, len(texts)))
    lines = [json.dumps(t) for t in texts]
    lines.insert(position, bad)
    with pytest.raises(RequestError) as info:
        decode(("\n".join(lines) + "\n").encode(), "application/jsonlines")
    assert info.value.http_status == 400 and f"Record {position + 1} (line {position + 1})" in info.value.message


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('"Quote of the day\nfire\ncalm\n', "Record 1 (from line 1) is not valid CSV (unexpected end of data)"),
        ('fine\n"Fire!" he said\n', "Record 2 (from line 2) is not valid CSV"),
    ],
)
def test_csv_that_breaks_record_boundaries_is_a_400_naming_the_record(body, fragment):
    with pytest.raises(RequestError) as info:
        decode(body.encode(), "text/csv")
    assert fragment in info.value.message and info.value.fix


def test_csv_cells_longer_than_the_csv_modules_default_limit_are_texts():
    long_text = "flood " * 40_000  # 240,000 characters; Python's csv stops at 131,072 by default
    limit = csv.field_size_limit()
    assert decode(csv_body([long_text, "short"]), "text/csv") == [long_text, "short"]
    assert csv.field_size_limit() == limit  # a process-wide setting: other readers keep theirs


def test_deeply_nested_json_is_a_400():
    with pytest.raises(RequestError) as info:
        decode(b"[" * 100_000, "application/json")
    assert info.value.http_status == 400 and "nested too deeply" in info.value.message


@pytest.mark.parametrize(
    "body, content_type, status, fragment",
    [
        (b"[1, 2", "application/json", 400, "not valid JSON"),
        (b'["a", "b"', "application/json", 400, "not valid JSON"),
        (b'[1, "a"]', "application/json", 400, "The body[0] is int"),
        (b'{"text": "a"}', "application/json", 400, "without an 'inputs' key"),
        (b'{"inputs": 5}', "application/json", 400, "inputs is int"),
        (b"   ", "application/json", 400, "holds no texts"),
        (b"", "text/csv", 400, "body is empty"),
        (b"[]", "application/json", 400, "holds no texts"),
        (b"[1]\n", "application/jsonlines", 400, "Record 1 (line 1) holds list"),
        (b'{"x": 1}\n', "application/jsonlines", 400, "neither an 'inputs' nor a 'text' key"),
        (b"\xff\xfe", "text/plain", 400, "not valid utf-8"),
        (b"a", "application/xml", 415, "Unsupported Content-Type 'application/xml'"),
        (b"a", None, 415, "Unsupported Content-Type 'none'"),
        (b"a", "text/plain; charset=klingon", 415, "Unsupported charset 'klingon'"),
        (b"id,label\n1,2\n", "text/csv; header=present", 400, "no 'text' column"),
    ],
)
def test_decode_errors_are_4xx_with_a_fix(body, content_type, status, fragment):
    with pytest.raises(RequestError) as info:
        decode(body, content_type)
    assert info.value.http_status == status
    assert fragment in info.value.message and info.value.fix


@pytest.mark.parametrize(
    "charset, encoding",
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("utf-16", "utf-16"),
        ("UTF-16LE", "utf-16-le"),
        ("utf_16_be", "utf-16-be"),
        ("utf-32", "utf-32"),
        ("utf-32le", "utf-32-le"),
        ("latin-1", "latin-1"),
        ("ISO-8859-1", "latin-1"),
        ("iso8859_1", "latin-1"),
        ("us-ascii", "ascii"),
        ("ASCII", "ascii"),
    ],
)
def test_the_documented_charsets_and_their_aliases_are_read(charset, encoding):
    text = "Forest fire near La Ronge" + ("é" if encoding != "ascii" else "")
    assert decode(text.encode(encoding), f"text/plain; charset={charset}") == [text]


@pytest.mark.parametrize(
    "charset",
    ["punycode", "idna", "rot13", "rot-13", "uu", "zlib", "zlib_codec", "base64", "hex", "utf-7", "cp1252", "x" * 5000],
)
def test_any_other_charset_is_a_415_naming_the_accepted_ones(charset):
    # punycode's decoder is quadratic (0.6 MB took 4.3 s of CPU), idna raised a 500; the others are
    # not text encodings: none of them may run on a client's body.
    with pytest.raises(RequestError) as info:
        decode(b"-" + b"a" * 600_000, f"text/plain; charset={charset}")
    assert info.value.http_status == 415
    assert "utf-8, utf-16, utf-16le, utf-16be, utf-32, utf-32le, utf-32be, iso-8859-1, us-ascii" in info.value.fix


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/json; charset=UTF-8"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_text(content_type):
    assert decode("\ufeff".encode() + b'["Forest fire"]', content_type) in (["Forest fire"], ['["Forest fire"]'])


SIX_MIB = 6 << 20


def _peak_bytes(body: bytes, content_type: str, **options) -> tuple[int, int]:
    """Peak bytes Python allocated while decoding ``body`` (which exists before), and the status."""
    tracemalloc.start()
    try:
        try:
            decode(body, content_type, 10_000, **options)
            status = 200
        except RequestError as exc:
            status = exc.http_status
        return tracemalloc.get_traced_memory()[1], status
    finally:
        tracemalloc.stop()


# Each costs far more than its size if read in full: ~57 bytes a record (a str and its list slot)
# for one-byte records, ~20x for "[]," (an empty list each), 8 bytes a field for lone commas.
BODIES_OF_MANY_TINY_RECORDS = [
    (b"\n" * SIX_MIB, "text/csv", {}),
    (b"\n" * SIX_MIB, "text/plain", {"plain_text_lines": True}),
    (b"a\n" * (SIX_MIB // 2), "text/plain", {"plain_text_lines": True}),
    (b'"a"\n' * (SIX_MIB // 4), "application/jsonlines", {}),
    (b"\n" * SIX_MIB, "application/jsonlines", {}),
    (b"[" + b'"",' * (SIX_MIB // 3) + b'""]', "application/json", {}),
    (b"[" + b"[]," * (SIX_MIB // 3) + b"[]]", "application/json", {}),
    (b'{"inputs": "a", "parameters": [' + b"{}," * (SIX_MIB // 3) + b"{}]}", "application/json", {}),
    (b'"a" ' * (SIX_MIB // 4), "application/json", {}),
    (b"[" * SIX_MIB, "application/json", {}),
    (b'["' + b"a" * 100 + b'"' + b',"aaaa"' * (SIX_MIB // 7) + b"]", "application/json", {}),
    (b"," * SIX_MIB, "text/csv", {}),
    (b",\n" * (SIX_MIB // 2), "text/csv", {}),
    (b"text\n" + b",\n" * (SIX_MIB // 2), "text/csv; header=present", {}),
    ("😀".encode() + b"a" * SIX_MIB, "text/plain", {}),
]


@pytest.mark.parametrize("body, content_type, options", BODIES_OF_MANY_TINY_RECORDS)
def test_decoding_any_body_costs_a_small_multiple_of_its_size(body, content_type, options):
    # The bound: the decoded str (up to 4 bytes a character: one emoji widens a whole ASCII body),
    # the texts cut from it (at most its size again), and what 10,001 records cost whatever their
    # size. 6 MiB of line feeds as text/csv cost +1.1 GB before this (every record read first).
    peak, status = _peak_bytes(body, content_type, **options)
    assert status in (200, 400, 413)
    assert peak <= 6 * len(body), f"{peak / len(body):.1f} x the body ({status})"


def test_a_body_of_line_feeds_stops_at_the_text_cap_with_a_413():
    with pytest.raises(RequestError) as info:
        decode(b"\n" * SIX_MIB, "text/csv", max_texts=10_000)
    assert info.value.http_status == 413 and "more than 10000 texts" in info.value.message


def test_a_json_body_with_more_values_than_the_cap_allows_is_a_413_before_it_is_parsed():
    body = json.dumps({"inputs": ["x"] * 5, "parameters": [[]] * 30_000}).encode()
    with pytest.raises(RequestError) as info:
        decode(body, "application/json", max_texts=10_000)
    assert info.value.http_status == 413 and "JSON values" in info.value.message


def test_the_json_size_check_lets_a_full_request_through():
    texts = [f"tweet {i}, with a comma [and brackets] {{and braces}}" for i in range(10_000)]
    body = json.dumps({"inputs": texts, "parameters": {"truncation": True}}).encode()
    assert decode(body, "application/json", max_texts=10_000) == texts


def test_a_csv_body_of_commas_is_a_413_before_the_csv_module_splits_it():
    with pytest.raises(RequestError) as info:
        decode(b"," * SIX_MIB, "text/csv", max_texts=10_000)
    assert info.value.http_status == 413 and "commas" in info.value.message


def test_too_many_texts_is_413():
    with pytest.raises(RequestError) as info:
        decode(json.dumps(["x"] * 11).encode(), "application/json", max_texts=10)
    assert info.value.http_status == 413 and "at most 10" in info.value.message


# ---- Accept, custom attributes, media types ----------------------------------------------------------


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("application/x-jsonlines", "application/jsonlines"),
        ("application/xml, text/csv;q=0.5", "text/csv"),
        ("text/csv;q=0.2, application/json;q=0.9", "application/json"),
        ("text/*", "text/csv"),
        ("application/json;q=0, text/csv", "text/csv"),
    ],
)
def test_accept_negotiation(accept, expected):
    assert negotiate_accept(accept) == expected


def test_accept_default_comes_from_the_endpoint_setting():
    assert negotiate_accept("*/*", default="text/csv") == "text/csv"


def test_unsupported_accept_is_406():
    with pytest.raises(RequestError) as info:
        negotiate_accept("application/xml")
    assert info.value.http_status == 406 and "text/csv" in info.value.fix


def test_output_format_from_custom_attributes():
    assert output_format("trace=abc; output=logits") == "logits"
    assert output_format(None, default="logits") == "logits"
    assert output_format("trace=abc") == "predictions"
    with pytest.raises(RequestError):
        output_format("output=xml")


def test_media_type_parsing():
    assert codecs.media_type('Text/CSV; Charset="UTF-8"; header=present') == (
        "text/csv",
        {"charset": "UTF-8", "header": "present"},
    )


# ---- encoding ---------------------------------------------------------------------------------------

PREDICTIONS = Predictions(
    (
        Prediction("Real disaster", 1, (0.1, 0.9), (-1.0, 1.2), False),
        Prediction("Not, a disaster", 0, (0.75, 0.25), (0.5, -0.6), True),
    ),
    ("Not, a disaster", "Real disaster"),
)


def test_encode_json():
    body, content_type = encode(PREDICTIONS, "application/json")
    assert content_type == "application/json"
    assert json.loads(body)["predictions"][0] == {
        "label": "Real disaster",
        "label_id": 1,
        "truncated": False,
        "probabilities": {"Not, a disaster": 0.1, "Real disaster": 0.9},
    }


def test_encode_jsonlines_one_record_per_text():
    body, _ = encode(PREDICTIONS, "application/jsonlines")
    lines = body.decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["truncated"] is True


def test_encode_csv_quotes_label_names():
    body, content_type = encode(PREDICTIONS, "text/csv")
    assert content_type == "text/csv"
    assert body.decode().splitlines() == ["Real disaster,1,0.1,0.9,false", '"Not, a disaster",0,0.75,0.25,true']


def test_logits_format_is_what_the_reference_client_takes_argmax_over():
    import numpy as np

    body, _ = encode(PREDICTIONS, "application/json", "logits")
    assert json.loads(body) == [[-1.0, 1.2], [0.5, -0.6]]
    assert np.argmax(json.loads(body), axis=1).tolist() == [1, 0]
    assert encode(PREDICTIONS, "text/csv", "logits")[0].decode().splitlines() == ["-1.0,1.2", "0.5,-0.6"]
