"""The texts a fine-tune is asked to say so the probes can score it: one list, in one place.

Short texts (1-3 words) come first: that is where fine-tuned XTTS models babble or hallucinate past the end
of the text (the GPT does not emit its stop token), so a list without them misses the failure the babble
probe is for. Then sentences of common length, one with a number (the ASR and the normaliser must agree on
it), one question. Plain English, only letters, spaces, digits and ``. , ? ! '``.

>>> len(SAMPLE_TEXTS), sum(len(t.split()) <= 3 for t in SAMPLE_TEXTS)
(8, 3)
>>> sample_texts(4)
('Yes.', 'Thank you.', 'See you soon.', 'The river was quiet in the early morning.')
"""

from __future__ import annotations

SAMPLE_TEXTS = (
    "Yes.",
    "Thank you.",
    "See you soon.",
    "The river was quiet in the early morning.",
    "Could you tell me where the station is?",
    "She bought 12 apples and a loaf of bread at the market.",
    "We will meet again next week, when the weather is better.",
    "The best way to spend a cold evening is reading a good book by the fire.",
)


def sample_texts(count: int | None = None) -> tuple[str, ...]:
    """The first ``count`` sample texts (all when None); short ones first, so even 3 texts include them."""
    return SAMPLE_TEXTS if count is None else SAMPLE_TEXTS[: max(0, count)]
