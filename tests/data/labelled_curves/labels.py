"""The labels of the labelled real curves: (label, reason), written by reading each curve (see extract.py)."""

UT = "under-trained"
SI = "still-improving"
OF = "overfitting"

DEMO = {
    0: (
        UT,
        "6.43 -> 5.59 (13%) in a straight line, every epoch -0.05; the study's best reaches 3.68: lr 2.4e-5 is far too slow",
    ),
    1: (UT, "same straight descent as #0 (6.43 -> 5.60), nowhere near levelling off"),
    4: (SI, "4.13, 4.08, 4.05 at the end: still falling but decelerating; 37% improvement against the best's 43%"),
    5: (SI, "like #4: 4.15, 4.10, 4.06 at the end, slowing down, close to the best's improvement"),
    8: (
        OF,
        "minimum 3.764 at step 14, then 3.780, 3.797, 3.802, 3.791: up ~1% for four evaluations in a row while train loss fell 3.07 -> 2.71",
    ),
    9: (
        OF,
        "minimum 3.719 at step 22, then 3.727, 3.736, 3.742, 3.738: a small (0.5%) but steady rise over four evaluations while train loss kept falling 2.83 -> 2.60",
    ),
    12: (OF, "minimum 3.966 at step 8, then climbs every evaluation to 4.243 (+7%) while train loss falls 2.9 -> 2.3"),
    13: (OF, "minimum 3.995 at step 8, then 4.04-4.13 (+3%) for four evaluations while train loss falls 3.1 -> 2.5"),
    16: (UT, "straight line 6.43 -> 5.82 (9.5%), still -0.04 per epoch at the end"),
    17: (UT, "straight line 6.43 -> 5.82, like #16"),
    20: (SI, "4.40, 4.33, 4.26, 4.21 at the end: still falling, slower than at the start; 35% against the best's 43%"),
    21: (SI, "like #20: 4.43 -> 4.24 over the last four, decelerating"),
    24: (
        OF,
        "plateau 3.745-3.743, then 3.755 and 3.773: two evaluations up (+0.8%) while train loss falls 2.90 -> 2.68; the full curve keeps rising",
    ),
    25: (
        "healthy",
        "levels off at 3.697; the two evaluations after it are +0.005 and +0.008 (0.2%): flat, not a rise that matters",
    ),
    28: (OF, "minimum 3.989 at step 6, then 4.005, 4.068, 4.079, 4.182 while train loss falls 3.2 -> 2.0"),
    29: (OF, "minimum 3.910 at step 8 after a wiggle, then 4.033, 4.110 (+5%) while train loss falls"),
    32: (UT, "straight line 6.43 -> 6.01 (6.6%), still falling at the same rate"),
    33: (UT, "straight line 6.43 -> 6.01, like #32"),
    36: (UT, "4.74, 4.66, 4.58, 4.51 at the end: falling almost as fast as it ever did, 0.8 above the best's loss"),
    37: (UT, "like #36: 4.76 -> 4.53 over the last four, no sign of levelling off"),
    40: (
        "healthy",
        "levels off at 3.72-3.73 for five evaluations; the last three creep up by 0.003-0.011 (0.3%): flat",
    ),
    41: (
        "rising-at-end",
        "falls to 3.682 (steps 28 and 30), then one last evaluation at 3.698 (+0.4%); nothing after it to tell a turn from a bump",
    ),
    44: (OF, "minimum 3.865 at step 6, then 3.877 -> 4.063 (+5%) while train loss falls 3.25 -> 2.14"),
    45: (OF, "minimum 3.807 at step 6, then 3.865 -> 4.037 (+6%) while train loss falls"),
    48: (UT, "straight line 6.43 -> 6.21 (3.5%)"),
    49: (UT, "straight line 6.43 -> 6.21 (3.4%)"),
    52: (UT, "straight line 6.43 -> 5.18 (19%), -0.08 every epoch to the end"),
    53: (UT, "straight line 6.43 -> 5.20 (19%), like #52"),
    56: ("healthy", "levels off: 3.757, 3.744, 3.739, then 3.745 (+0.006, 0.2%): flat at the end"),
    57: (SI, "3.775, 3.746, 3.730, 3.723: still falling slowly at the end, the study's second-best loss"),
    60: (OF, "minimum 3.807 at step 6, then 3.826 -> 3.996 (+5%) while train loss falls 3.5 -> 2.3"),
    61: (OF, "minimum 3.780 at step 6, then 3.796 -> 3.942 (+4%) while train loss falls"),
    64: (UT, "6.43 -> 6.36 (1%) in a straight line: every block frozen and lr 2.4e-5 barely move it, still falling"),
    65: (UT, "6.43 -> 6.36 (1%), straight line, like #64"),
    68: (UT, "straight line 6.43 -> 6.07 (5.5%)"),
    69: (UT, "straight line 6.43 -> 6.08 (5.5%)"),
    72: (UT, "5.03, 4.96, 4.89 at the end: falling at three quarters of its average pace, 1.2 above the best's loss"),
    73: (UT, "like #72: 5.03 -> 4.88 at the end, still steep"),
    76: (
        OF,
        "minimum 3.992 at step 16, then 4.006 -> 4.131 (+3.5%) for four evaluations while train loss falls 2.25 -> 2.06",
    ),
    77: (
        OF,
        "minimum 3.994 at step 16, then 3.996, 4.011, 4.029, 4.050 (+1.4%), rising each time while train loss falls",
    ),
    80: (UT, "the guide's recipe (lr 1e-5): straight line 6.43 -> 6.25 (2.7%)"),
}

DEMO_VOICE2 = {
    0: (
        UT,
        "3.566 -> 3.457 (3.1%, half the best's 6.2%), still falling 0.003 per epoch at the end: lr 2.4e-5 is too slow",
    ),
    1: (UT, "3.566 -> 3.460, still falling steadily at the end, like #0"),
    4: (SI, "the study's best: 3.364, 3.354, 3.348, 3.345 at the end, still creeping down"),
    5: (SI, "3.393, 3.386, 3.380, 3.372: still falling at the end, close to the best"),
    8: (OF, "minimum 3.370 at step 10, then 3.404, 3.445, 3.468, 3.488 (+3.5%) while train loss falls 3.2 -> 2.0"),
    9: (OF, "minimum 3.360 at step 8, then 3.386, 3.442, 3.452, 3.447 (+2.6%) while train loss falls"),
    12: (OF, "never below the base model: 3.566 -> 3.87-3.99 (+9-12%) while train loss falls 4.2 -> 2.3"),
    13: (OF, "never below the base model: 3.566 -> 4.29, 3.85, 3.83, 3.94 while train loss falls 4.8 -> 3.0"),
    16: (UT, "3.566 -> 3.477 (2.5%), still falling steadily at the end"),
    17: (UT, "3.566 -> 3.483, straight-ish descent to the end"),
    20: (SI, "3.386, 3.380, 3.374, 3.368: still falling at the end, 90% of the best's improvement"),
    21: ("healthy", "levels off: 3.405, 3.403, 3.401, 3.398; early stopping ended it for want of 0.01 improvements"),
    24: (
        OF,
        "minimum 3.364 at step 10, then 3.367, 3.369, 3.385 while train loss falls 3.3 -> 2.3 (one uptick to 2.67 in the last interval)",
    ),
    25: (OF, "minimum 3.360 at step 10, then 3.377, 3.404, 3.427 (+2%) while train loss falls"),
    28: (OF, "never improves: 3.566, 3.623, 3.695, 3.732, 3.872 while train loss falls 3.9 -> 2.1"),
    29: (OF, "never below the base: 3.757, 3.623, 3.711, 3.767 while train loss falls 4.6 -> 2.9"),
    32: (UT, "3.566 -> 3.503 (1.8%), a straight line"),
    33: (UT, "3.566 -> 3.509 (1.6%), a straight line"),
    36: (SI, "3.412, 3.408, 3.404, 3.400: still falling at the end but slowing; 75% of the best's improvement"),
    37: ("healthy", "3.423, 3.420, 3.418, 3.414: creeping down ever slower, close to level"),
    40: (
        OF,
        "minimum 3.370 at steps 14-16, then 3.377, 3.392, 3.420 (+1.5%) while train loss falls (uptick only in the last interval)",
    ),
    41: (OF, "minimum 3.376 at step 10, then 3.377, 3.389, 3.408, 3.417 (+1.2%) while train loss falls 3.76 -> 3.21"),
    44: (OF, "3.492 at step 2, then 3.555 -> 3.926 (+12%) while train loss falls 3.7 -> 2.2"),
    45: (OF, "minimum 3.531 at step 4, then 3.592 -> 3.849 (+9%) while train loss falls"),
    48: ("underfitting", "3.566 -> 3.545 (0.6%) before early stopping ended it: barely learning"),
    49: ("underfitting", "3.566 -> 3.557 (0.3%) in five evaluations: barely learning"),
    52: (UT, "3.447, 3.442, 3.437, 3.433: a steady descent to the end, 60% of the best's improvement"),
    53: (UT, "3.453, 3.449, 3.445, 3.441: steady descent, 3.5% in all"),
    56: (
        OF,
        "minimum 3.387 at step 20, then 3.393, 3.402, 3.413 (+0.8%) rising each time while train loss falls 3.10 -> 2.48",
    ),
    57: (
        OF,
        "minimum 3.393 at step 12, then 3.395, 3.404, 3.410 (+0.5%) rising each time; the train trend falls; the full curve keeps rising",
    ),
    60: (OF, "3.417 at step 2, then 3.461 -> 3.771 (+10%) while train loss falls 3.6 -> 2.5"),
    61: (OF, "minimum 3.465 at step 6, then 3.536, 3.682 (+6%) while train loss falls"),
    64: ("underfitting", "3.566 -> 3.562 (0.1%): every block frozen at lr 2.4e-5, early stopping ended it"),
    65: ("underfitting", "3.566 -> 3.562 (0.1%), like #64"),
    68: (UT, "3.566 -> 3.483 (2.3%), a straight line to the end"),
    69: (UT, "3.566 -> 3.484 (2.3%), a straight line to the end"),
    72: ("healthy", "levels off at 3.385-3.386 for its last four evaluations"),
    73: ("healthy", "3.367, 3.364, 3.362, 3.361: levelled off"),
    76: (OF, "minimum 3.402 at step 4, then 3.417 -> 3.579 (+5%) while train loss falls 3.4 -> 1.9"),
    77: (OF, "minimum 3.392 at step 4, then 3.395, 3.422, 3.466, 3.517 (+3.7%) while train loss falls"),
    80: ("underfitting", "the guide's recipe (lr 1e-5): 3.566 -> 3.558 (0.2%) before early stopping ended it"),
}

KATHLEEN_SOURCE = (
    "a search on the CC0 real speaker (corpora/real-voice-kathleen): xtts-tune search --config studies/kathleen.yaml "
    "--trials 14 --set data.train_count=24 --set train.eval_every=6 --set search.keep_top_k=14, stopped after 10 "
    "finished trials (branch verdicts, commit d9064b5 + working tree; x86_64, 2 CPU cores shared; torch 2.11 CPU); "
    "runs/kathleen/kathleen/trials/trial-NNNN/curve.json as written by the search"
)
KATHLEEN = {
    0: (
        UT,
        "the guide's recipe (lr 1e-5): a straight line 7.175 -> 6.707 (6.5%), -0.03 every epoch to the end, "
        "while trial 3 reached 3.44",
    ),
    1: (UT, "a straight line 7.175 -> 6.044 (15.8%), -0.065 every epoch to the end: far from trial 3's 3.44"),
    2: (UT, "a straight line 7.175 -> 6.397 (10.8%), -0.05 every epoch to the end"),
    3: (
        OF,
        "falls to 3.437 at step 42 (after wiggles of +0.06 and +0.02 that recovered), then 3.583, 3.514, 3.549, "
        "3.564: 2-4% above the minimum for four evaluations while train loss falls 2.93 -> 2.69",
    ),
    4: (UT, "a straight line 7.175 -> 6.104 (14.9%), -0.07 every epoch to the end"),
    5: (
        "healthy",
        "3.500 at step 18, a bump to 3.556 and 3.629 (+3.7%), then back to 3.574 and 3.513 (+0.4%) "
        "while train loss falls: the rise did not last; early stopping ended it near its minimum",
    ),
    6: (
        SI,
        "7.175 -> 3.634 and still falling at the end (3.792, 3.724, 3.674, 3.634), slowing down; 95% of trial "
        "3's improvement",
    ),
    7: (
        "healthy",
        "3.419 at steps 36-42, a bump to 3.510 (+2.7%) that was coming back down (3.468, 3.438) when "
        "early stopping ended it; the curve's earlier wiggles were as large (+0.20, +0.07) and recovered",
    ),
    8: (
        OF,
        "3.367 at step 66, then 3.380, 3.382, 3.410: three evaluations in a row above the minimum and climbing "
        "(+1.3% at the end) while train loss falls 2.89 -> 2.74; earlier bumps of +0.02 had recovered",
    ),
    9: (OF, "3.348 at step 30, then 3.388, 3.394, 3.483, 3.489 (+4.2%) while train loss falls 3.03 -> 2.73"),
}
