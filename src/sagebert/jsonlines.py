"""JSON Lines framing shared by request decoding (serving) and training files (data), which is why
it sits at the package root rather than in serving/ or training/.

A JSON Lines record ends at a line feed, and only there. ``str.splitlines()`` also ends lines at
U+2028, U+2029, U+0085, vertical tab, form feed and the ASCII separators, all of which are valid
unescaped inside a JSON string: splitting there breaks one record into two invalid ones.
"""

from __future__ import annotations

from collections.abc import Iterator


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Each line of ``text`` with its 1-based number, split at ``\\n`` alone (a ``\\r`` before it is
    dropped, so CRLF files read the same). A final line feed does not start an empty last line;
    blank lines inside the text are yielded, so callers decide what a blank line means."""
    # Found one at a time, not split at once: a body of 6 MiB of line feeds would make a list of
    # 6 million lines, eight bytes each, before its reader could stop at a record cap.
    start, number = 0, 0
    while start < len(text):
        stop = text.find("\n", start)
        if stop == -1:
            stop = len(text)
        number += 1
        line = text[start:stop]
        yield number, line[:-1] if line.endswith("\r") else line
        start = stop + 1
