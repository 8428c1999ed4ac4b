"""Optional tweet cleaning (hyperparameter ``clean_text``).

Removes URLs, @mentions, HTML entities and emoji, and repairs mojibake. General mojibake
(UTF-8 read as Latin-1/Windows-1252, e.g. ``cafÃ©``) is repaired by ftfy. The Kaggle disaster
tweets also carry a lossy variety (UTF-8 read as Mac Roman with bytes dropped, e.g. ``\\x89Ûª``
for a right single quote) that no decoder can reverse; the recurring sequences are mapped below,
found by counting them in the raw competition file.
"""

from __future__ import annotations

import html
import re
import unicodedata

import ftfy

_LOSSY_MOJIBAKE = {
    "\x89Û_": "…",
    "\x89Ûª": "'",
    "\x89Û÷": "'",
    "\x89ÛÏ": '"',
    "\x89Û\x9d": '"',
    "\x89ÛÒ": "—",
    "\x89ÛÓ": "–",
    "\x89Û¢": "•",
    "\x89ã¢": "",
    "åÊ": " ",
    "Ì©": "é",
    "Ì_": "",
    "å¨": "",
    "åÈ": "",
    "åÇ": "",
    "å_": "",
}
_LOSSY_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_LOSSY_MOJIBAKE, key=len, reverse=True)))
# Also the stubs Twitter leaves when it truncates a tweet ("... http", "https:/").
_URL = re.compile(r"https?:/\S*|\bhttps?\b|\bwww\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_SPACES = re.compile(r"\s+")
# Straight quotes, whatever step produced curly ones (ftfy repairs, HTML entities such as &rsquo;).
_STRAIGHT_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _is_emoji_like(char: str) -> bool:
    # Emoji and pictographs are "Symbol, other"; joiners and variation selectors glue them.
    category = unicodedata.category(char)
    return category == "So" or char in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"


def clean_text(text: str) -> str:
    """One cleaned, whitespace-normalised tweet. Idempotent: cleaning twice changes nothing."""
    text = _LOSSY_PATTERN.sub(lambda m: _LOSSY_MOJIBAKE[m.group()], text)
    text = ftfy.fix_text(text, unescape_html=False)
    # Twitter double-escapes ("&amp;amp;"): unescape until stable, at most a few rounds.
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _C1_CONTROLS.sub("", text)
    text = "".join(" " if _is_emoji_like(ch) else ch for ch in text)
    return _SPACES.sub(" ", text.translate(_STRAIGHT_QUOTES)).strip()
