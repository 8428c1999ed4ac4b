import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagebert.errors import DataError
from sagebert.training.data import ColumnChoice, read_channel, require_classes, shuffled_head, stratified_split
from support import RAW_CSV, TEST_CSV, TRAIN_CSV, write_csv

LABELS = ("Not a disaster", "Real disaster")


def channel(tmp_path, name="training"):
    directory = tmp_path / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def read(directory, **kwargs):
    kwargs.setdefault("label_names", LABELS)
    return read_channel(directory, channel="training", **kwargs)


def test_the_bundled_split_reads_every_row_including_embedded_newlines(tmp_path):
    d = channel(tmp_path)
    (d / "train.csv").write_bytes(TRAIN_CSV.read_bytes())
    data = read(d)
    assert len(data) == 5709
    assert set(data.labels) == {0, 1}
    assert sum(data.labels) / len(data) == pytest.approx(0.43, abs=0.01)


def test_the_test_split_has_1904_rows(tmp_path):
    d = channel(tmp_path)
    (d / "test.csv").write_bytes(TEST_CSV.read_bytes())
    assert len(read(d)) == 1904


def test_the_raw_kaggle_file_in_its_own_column_order(tmp_path):
    d = channel(tmp_path)
    (d / "raw.csv").write_bytes(RAW_CSV.read_bytes())
    data = read(d)  # id,target,keyword,text,location: text and target found by name
    assert len(data) == 7613
    assert data.texts[1] == "Forest fire near La Ronge Sask. Canada"
    assert data.labels[1] == 1


def test_raw_kaggle_columns_in_any_order(tmp_path):
    d = channel(tmp_path)
    write_csv(
        d / "kaggle.csv",
        ["location", "text", "id", "target", "keyword"],
        [["", "Fire at the mall", "1", "1", "fire"], ["NYC", "I love fruits", "2", "0", ""]],
    )
    data = read(d)
    assert data.texts == ["Fire at the mall", "I love fruits"] and data.labels == [1, 0]


def test_json_lines(tmp_path):
    d = channel(tmp_path)
    (d / "part-0.jsonl").write_text(
        '{"text": "Just happened a terrible car crash", "label": 1}\n\n'
        '{"text": "I met my friend today", "label": "Not a disaster"}\n'
    )
    data = read(d)
    assert data.labels == [1, 0] and data.texts[1] == "I met my friend today"


def test_configured_column_names(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["body", "is_disaster"], [["flood warning", "1"], ["nice day", "0"]])
    data = read(d, columns=ColumnChoice(text_column="body", label_column="is_disaster"))
    assert data.texts == ["flood warning", "nice day"]


def test_label_names_as_values_are_accepted(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["text", "label"], [["a", "real disaster"], ["b", "Not a disaster"]])
    assert read(d).labels == [1, 0]


def test_files_without_suffix_use_the_channel_content_type(tmp_path):
    d = channel(tmp_path)
    (d / "part-00000").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    assert len(read(d, content_type="application/jsonlines")) == 2


def test_several_files_and_nested_prefixes_are_concatenated_in_name_order(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "b" / "2.csv", ["label", "sentence"], [["1", "second"]])
    write_csv(d / "a.csv", ["label", "sentence"], [["0", "first"]])
    (d / ".hidden.csv").write_text("garbage")
    assert read(d).texts == ["first", "second"]


def test_cleaning_is_applied_when_asked(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["text", "target"], [["@you fire http://t.co/x &amp; smoke", "1"], ["ok", "0"]])
    assert read(d, clean=True).texts[0] == "fire & smoke"


# ---- bad input: each gives a DataError that names the problem and the fix ----------------------


def assert_data_error(directory, *fragments, **kwargs):
    with pytest.raises(DataError) as info:
        read(directory, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Fix:" in message
    return message


def test_missing_text_column(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["label", "body"], [["1", "fire"]])
    assert_data_error(d, "no text column found", "columns: label, body", "text_column")


def test_missing_label_column(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["id", "text"], [["1", "fire"]])
    assert_data_error(d, "no label column found", "label_column")


def test_configured_column_that_does_not_exist(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["label", "text"], [["1", "fire"]])
    assert_data_error(d, "no text column 'tweet'", columns=ColumnChoice(text_column="tweet"))


def test_empty_file(tmp_path):
    d = channel(tmp_path)
    (d / "train.csv").write_bytes(b"")
    assert_data_error(d, "train.csv in channel 'training' is empty")


def test_header_without_rows(tmp_path):
    d = channel(tmp_path)
    (d / "train.csv").write_text("label,sentence\n")
    assert_data_error(d, "has a header but no rows")


def test_undecodable_bytes_name_the_line(tmp_path):
    d = channel(tmp_path)
    (d / "train.csv").write_bytes(b"label,sentence\n1,fire\n0,caf" + b"\xe9 ok\n")
    assert_data_error(d, "line 3", "not valid UTF-8", "iconv")


def test_labels_outside_the_label_set_are_listed_with_lines(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["label", "sentence"], [["1", "a"], ["2", "b"], ["maybe", "c"], ["", "d"]])
    assert_data_error(
        d,
        "3 row(s) have a label outside the label set",
        "'2' (line 3)",
        "'maybe' (line 4)",
        "0 or 'Not a disaster'",
        "label_names",
    )


@pytest.mark.parametrize("spelling", ["1e0", "１", "-0", "+1", "1.0", "0x1", "1_0", " 1 1", "٣", "01"])
def test_a_label_spelled_other_than_an_id_or_a_name_is_refused_with_its_line(tmp_path, spelling):
    # float() read "1e0", fullwidth "１" and "-0" as 1, 1 and 0: a wrong column could train.
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["label", "sentence"], [["1", "a"], [spelling, "b"], ["0", "c"]])
    assert_data_error(d, "1 row(s) have a label outside the label set", f"{spelling.strip()!r} (line 3)")


@pytest.mark.parametrize("value", [True, 1.0, None, [1], "1e0"])
def test_a_json_label_that_is_not_an_integer_id_or_a_name_is_refused(tmp_path, value):
    d = channel(tmp_path)
    (d / "x.jsonl").write_text(json.dumps({"text": "a", "label": 0}) + "\n" + json.dumps({"text": "b", "label": value}))
    assert_data_error(d, "1 row(s) have a label outside the label set", "(line 2)")


def test_the_documented_label_spellings_are_read(tmp_path):
    d = channel(tmp_path)
    rows = [["0", "a"], [" 1 ", "b"], ["Real Disaster", "c"], ["  not a disaster", "d"]]
    write_csv(d / "x.csv", ["label", "sentence"], rows)
    assert read(d).labels == [0, 1, 1, 0]


def test_channel_without_data_files(tmp_path):
    d = channel(tmp_path)
    (d / "notes.txt").write_text("hello")
    assert_data_error(d, "no .csv or .jsonl file", "notes.txt")


def test_invalid_json_line(tmp_path):
    d = channel(tmp_path)
    (d / "x.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", label: 1}\n')
    assert_data_error(d, "x.jsonl, line 2: not valid JSON")


def test_json_record_that_is_not_an_object(tmp_path):
    d = channel(tmp_path)
    (d / "x.jsonl").write_text('["a", 0]\n')
    assert_data_error(d, "expected a JSON object")


def test_short_csv_rows(tmp_path):
    d = channel(tmp_path)
    (d / "x.csv").write_text("id,text,label\n1,fire,1\n2,unquoted\n")
    assert_data_error(d, "fewer columns than the header", "lines 3")


def test_a_single_class_is_refused(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "x.csv", ["label", "sentence"], [["1", "a"], ["1", "b"]])
    with pytest.raises(DataError) as info:
        require_classes(read(d), LABELS)
    assert "single class ('Real disaster', 2 rows)" in str(info.value)


# ---- hostile files: links out of the channel, special files, NUL bytes, huge fields -------------


def test_a_link_out_of_the_channel_is_refused_without_reading_its_target(tmp_path):
    secret = tmp_path / "outside" / "secret.csv"
    write_csv(secret, ["label", "sentence"], [["1", "the secret text"]])
    d = channel(tmp_path)
    write_csv(d / "a.csv", ["label", "sentence"], [["0", "calm"]])
    (d / "b.csv").symlink_to(secret)
    message = assert_data_error(d, "b.csv in channel 'training' is a symbolic link that points outside it")
    assert "secret" not in message


def test_a_linked_folder_out_of_the_channel_is_refused(tmp_path):
    write_csv(tmp_path / "outside" / "x.csv", ["label", "sentence"], [["1", "elsewhere"]])
    d = channel(tmp_path)
    (d / "more").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert_data_error(d, "more in channel 'training' is a symbolic link that points outside it")


def test_a_dangling_link_is_refused(tmp_path):
    d = channel(tmp_path)
    (d / "x.csv").symlink_to(tmp_path / "gone.csv")
    assert_data_error(d, "x.csv in channel 'training' is a symbolic link that points outside it (or nowhere)")


def test_a_link_to_a_file_inside_the_channel_is_read(tmp_path):
    d = channel(tmp_path)
    write_csv(d / "data" / "x.csv", ["label", "sentence"], [["1", "fire"], ["0", "calm"]])
    (d / "_all").mkdir()
    (d / "_all" / "x.csv").symlink_to(d / "data" / "x.csv")  # hidden: skipped, but allowed
    (d / "y.csv").symlink_to("data/x.csv")
    assert read(d).texts == ["fire", "calm", "fire", "calm"]


def test_a_fifo_in_the_channel_is_refused_rather_than_read(tmp_path):
    import os

    d = channel(tmp_path)
    os.mkfifo(d / "x.csv")  # reading it would block forever
    assert_data_error(d, "x.csv in channel 'training' is not a regular file")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_nul_byte_fails_naming_the_line(tmp_path, suffix):
    d = channel(tmp_path)
    body = "label,sentence\n0,calm\n1,fi\0re\n" if suffix == ".csv" else '{"text": "a", "label": 0}\n\0\n'
    (d / f"x{suffix}").write_text(body)
    assert_data_error(d, f"x{suffix}: line {3 if suffix == '.csv' else 2} holds a NUL byte", "UTF-8")


def test_utf16_text_fails_as_not_utf8_text(tmp_path):
    d = channel(tmp_path)
    (d / "x.csv").write_text("label,sentence\n0,calm\n", encoding="utf-16")
    assert_data_error(d, "holds a NUL byte", "saved as UTF-16")


def test_a_field_over_the_csv_field_size_limit_names_the_limit_and_the_fix(tmp_path):
    d = channel(tmp_path)
    (d / "x.csv").write_text("label,sentence\n0,calm\n1," + "a" * 200_000 + "\n")
    assert_data_error(d, "x.csv, line 3", "131,072 characters", "csv.field_size_limit", "quote")


def test_an_unclosed_quote_that_swallows_the_file_names_the_limit(tmp_path):
    d = channel(tmp_path)
    rows = "".join(f"0,calm {i}\n" for i in range(20_000))
    (d / "x.csv").write_text('label,sentence\n1,"open quote\n' + rows)
    assert_data_error(d, "csv.field_size_limit", "never closed")


# NUL is refused (tested above); any other character may be in a text, but for a lone surrogate,
# which no UTF-8 file can hold.
WITHOUT_NUL = st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)))


@given(st.lists(st.tuples(WITHOUT_NUL, st.sampled_from([0, 1])), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_json_lines_keep_every_text_whole_whatever_it_holds(texts):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        body = "".join(json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n" for t, label in texts)
        (d / "x.jsonl").write_text(body, encoding="utf-8")
        data = read(d)
    assert data.texts == [t for t, _ in texts] and data.labels == [label for _, label in texts]


def test_an_empty_json_lines_file_is_refused_as_empty(tmp_path):
    d = channel(tmp_path)
    (d / "x.jsonl").write_text("")
    assert_data_error(d, "x.jsonl in channel 'training' is empty (0 rows)")


def test_json_lines_split_at_line_feeds_only(tmp_path):
    d = channel(tmp_path)
    texts = ["a\u2028b", "c\u0085d", "e\u2029f\x0bg\x0ch\x1ci"]
    (d / "x.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": i % 2}, ensure_ascii=False) + "\n" for i, t in enumerate(texts))
    )
    assert read(d).texts == texts


# ---- splits -------------------------------------------------------------------------------------


def test_stratified_split_keeps_class_shares_and_is_deterministic():
    labels = [0] * 80 + [1] * 20
    train, held = stratified_split(labels, 0.2, seed=3)
    assert len(held) == 20 and sum(labels[i] for i in held) == 4
    assert sorted(train + held) == list(range(100))
    assert stratified_split(labels, 0.2, seed=3) == (train, held)
    assert stratified_split(labels, 0.2, seed=4) != (train, held)


def test_max_train_samples_takes_a_seeded_sample(tmp_path):
    d = channel(tmp_path)
    (d / "train.csv").write_bytes(TRAIN_CSV.read_bytes())
    data = read(d)
    head = shuffled_head(data, 100, seed=1)
    assert len(head) == 100 and head.texts == shuffled_head(data, 100, seed=1).texts
    assert shuffled_head(data, 0, seed=1) is data
