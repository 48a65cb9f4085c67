"""The texts a fine-tune is asked to say so the probes can score it: one list, in one place.

Short texts (1-3 words) come first: that is where fine-tuned XTTS models babble or hallucinate past the end
of the text (the GPT does not emit its stop token), so a list without them misses the failure the babble
probe is for. Then sentences of common length, one with a number (the ASR and the normaliser must agree on
it), one question. Plain English, only letters, spaces, digits and ``. , ? ! '``.

>>> len(SAMPLE_TEXTS), sum(len(t.split()) <= 3 for t in SAMPLE_TEXTS)
(8, 3)
>>> sample_texts(4)
('Yes.', 'Thank you.', 'See you soon.', 'The river was quiet in the early morning.')

Forgetting by ear (:mod:`xtts_tune.search.forgetting_ear`) asks for sentences in languages other than the
target's: :data:`FORGETTING_TEXTS`, three languages picked by :func:`forgetting_languages`.

>>> forgetting_languages("en"), forgetting_languages("de")
(('de', 'es', 'fr'), ('es', 'fr', 'en'))
>>> forgetting_texts("es", 1)
('El perro corre muy rápido por el parque verde.',)
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


FORGETTING_TEXTS = {
    "de": (
        "Der Hund läuft sehr schnell über die grüne Wiese.",
        "Heute Abend gehen wir zusammen ins Kino.",
        "Mein Bruder wohnt seit drei Jahren in einer kleinen Stadt.",
    ),
    "es": (
        "El perro corre muy rápido por el parque verde.",
        "Esta noche vamos juntos al cine.",
        "Mi hermano vive en una ciudad pequeña desde hace tres años.",
    ),
    "fr": (
        "Le chien court très vite dans le parc vert.",
        "Ce soir, nous allons ensemble au cinéma.",
        "Mon frère habite dans une petite ville depuis trois ans.",
    ),
    "en": (
        "The dog runs very fast across the green park.",
        "Tonight we are going to the cinema together.",
        "My brother has lived in a small town for three years.",
    ),
}
"""The same few sentences in each language forgetting is heard in (every one XTTS v2 speaks and the shipped
Whisper base transcribes); plain words, numbers spelled out, so the ASR and the normaliser agree."""

FORGETTING_ORDER = ("de", "es", "fr", "en")
"""The order languages are picked in: the first three that are not the target's."""


def forgetting_languages(target: str, count: int = 3, spoken=None) -> tuple[str, ...]:
    """The ``count`` languages other than the ``target``'s (its base code: ``en-us`` counts as ``en``) that
    forgetting is heard in, among those the base speaks (``spoken``; None: all).

    >>> forgetting_languages("en", spoken=("en", "fr", "de"))
    ('de', 'fr')
    """
    own = target.split("-")[0].lower()
    langs = [lang for lang in FORGETTING_ORDER if lang != own and (spoken is None or lang in spoken)]
    return tuple(langs)[: max(0, count)]


def forgetting_texts(language: str, count: int) -> tuple[str, ...]:
    """The first ``count`` forgetting sentences of ``language``."""
    return FORGETTING_TEXTS[language][: max(0, count)]
