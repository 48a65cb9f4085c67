"""Text normalisation for scoring a transcript, and the error rates: one definition for every probe.

Both the text a sample was asked to say and the ASR's transcript go through :func:`normalize` before they are
compared: Unicode NFKC, lower case, whole numbers spelled out (``42`` -> ``forty two``; an ASR writes digits
where the text has words and the other way round), apostrophes dropped (``don't`` -> ``dont``), every other
punctuation mark a space, spaces collapsed. Word error rate (WER) and character error rate (CER, spaces
counted) are Levenshtein edits over the reference's length; :func:`error_counts` gives the raw counts so a
summary over many texts can pool them (edits summed over lengths summed), which weights long texts by their
length instead of letting a 1-word text swing the mean.

>>> normalize("Don't pay $42, pay 1,000!")
'dont pay forty two pay one thousand'
>>> wer("the cat sat", "the cat sat down"), cer("abc", "abd")
(0.3333333333333333, 0.3333333333333333)
>>> letters("Hello, world 7!")  # what seconds-per-character counts
15
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def number_words(n: int) -> str:
    """A whole number in English words (``1999`` -> ``one thousand nine hundred ninety nine``).

    >>> number_words(0), number_words(105), number_words(2_000_017)
    ('zero', 'one hundred five', 'two million seventeen')
    """
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in _SCALES:
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)  # unreachable: every n >= 100 has a scale


def _spell_number(match: re.Match) -> str:
    digits = match.group(0).replace(",", "")
    if len(digits) > 12:  # a serial number, not a quantity: say the digits
        return " ".join(_ONES[int(d)] for d in digits)
    return f" {number_words(int(digits))} "


def normalize(text: str) -> str:
    """``text`` as the error rates compare it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = re.sub(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+", _spell_number, text)
    text = re.sub(r"['\u2019`]", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def letters(text: str) -> int:
    """Letters and digits of the normalised text (numbers spelled out): what seconds-per-character counts."""
    return sum(ch.isalnum() for ch in normalize(text))


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions each cost 1).

    >>> edit_distance("kitten", "sitting"), edit_distance(["a", "b"], [])
    (3, 2)
    """
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Raw counts for pooling: ``{"word_edits", "words", "char_edits", "chars"}`` of the normalised texts.

    >>> error_counts("Hello world.", "hello word")
    {'word_edits': 1, 'words': 2, 'char_edits': 1, 'chars': 11}
    """
    ref, hyp = normalize(reference), normalize(hypothesis)
    return {
        "word_edits": edit_distance(ref.split(), hyp.split()),
        "words": len(ref.split()),
        "char_edits": edit_distance(ref, hyp),
        "chars": len(ref),
    }


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (can exceed 1 when words are added)."""
    c = error_counts(reference, hypothesis)
    return c["word_edits"] / max(1, c["words"])


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate (spaces included) of ``hypothesis`` against ``reference``."""
    c = error_counts(reference, hypothesis)
    return c["char_edits"] / max(1, c["chars"])


def last_word_index(reference: str, hyp_words: Sequence[str]) -> int | None:
    """Index in ``hyp_words`` (normalised single words) of the word aligned with the reference's last word,
    by a minimum-edit alignment; None when the transcript has nothing there (the last words were dropped).

    Words the ASR heard after that index are babble past the end of the text.

    >>> last_word_index("the cat sat", ["the", "cat", "sad", "and", "then"])
    2
    >>> last_word_index("the cat sat", ["the"]) is None
    True
    """
    ref = normalize(reference).split()
    hyp = list(hyp_words)
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return None
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    best = min(d[n][1:])  # trailing transcript words cost nothing: they are what babble looks like
    for k in range(m, 0, -1):  # the last reference word taken by a transcript word (match or substitution)
        if d[n][k] == best and d[n][k] == d[n - 1][k - 1] + (ref[-1] != hyp[k - 1]):
            return k - 1
    return None
