"""JSON Lines framing: records end at line feeds only, whatever the JSON strings hold."""

import json

from hypothesis import given
from hypothesis import strategies as st

from sagebert.jsonlines import numbered_lines


@given(st.lists(st.text(), max_size=30), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_every_record_comes_back_whole_and_in_order(texts, newline, final_newline):
    body = newline.join(json.dumps(t, ensure_ascii=False) for t in texts) + (newline if final_newline and texts else "")
    lines = list(numbered_lines(body))
    assert [json.loads(line) for _, line in lines] == texts
    assert [number for number, _ in lines] == list(range(1, len(texts) + 1))


def test_unicode_line_separators_inside_strings_do_not_split_a_record():
    record = json.dumps("a\u2028b\u2029c\x85d\x0be\x0cf\x1cg", ensure_ascii=False)
    assert list(numbered_lines(record + "\n" + record)) == [(1, record), (2, record)]


def test_blank_lines_are_kept_for_the_caller_to_judge():
    assert list(numbered_lines('"a"\n\n"b"\n')) == [(1, '"a"'), (2, ""), (3, '"b"')]
    assert list(numbered_lines("")) == []
