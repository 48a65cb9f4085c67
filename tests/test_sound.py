"""The judgment by ear (xtts_tune.analysis.ranking.sound) on constructed studies: a trial that sounds worse than the
base model is never recommended, a loss-quality divergence is named, a near-tie goes to the higher speaker
similarity only beyond the noise, and differences inside the noise are not reasons."""

from __future__ import annotations

from pathlib import Path

from test_analysis import add_trial, new_study

from xtts_tune.analysis.ranking.order import rank, why_passed_over
from xtts_tune.analysis.ranking.recommend import recommend
from xtts_tune.analysis.ranking.sound import judge_sound
from xtts_tune.record import write_study

BASE = {
    "similarity": 0.60,
    "similarity_sd": 0.04,
    "cer": 0.10,
    "cer_sd": 0.04,
    "n_texts": 5,
    "flag_counts": {},
    "probe_version": 1,
}
CEILING = {
    "similarity": 0.92,
    "similarity_sd": 0.02,
    "cer": 0.02,
    "cer_sd": 0.02,
    "n_texts": 10,
    "flag_counts": {},
    "probe_version": 1,
}


def probes(similarity: float, cer: float, **flags: int) -> dict:
    return {
        "similarity": similarity,
        "similarity_sd": 0.04,
        "cer": cer,
        "cer_sd": 0.04,
        "n_texts": 5,
        "flag_counts": flags,
        "probe_version": 1,
    }


def study_with(tmp_path: Path, *trials: tuple[float, dict | None], depth: int = 6):
    study = new_study(tmp_path / "s.db")
    write_study(study, probes_base=BASE, probes_ceiling=CEILING)
    for i, (level, figures) in enumerate(trials):
        add_trial(study, "healthy", level, {"freeze_depth": depth, "learning_rate": 1e-5 * (i + 1)}, probes=figures)
    return study


def test_a_less_intelligible_trial_is_never_recommended_even_with_the_lowest_loss(tmp_path):
    study = study_with(tmp_path, (3.00, probes(0.80, 0.45)), (3.20, probes(0.78, 0.11)))
    ranking = rank(study)
    assert ranking.winner.number == 1
    passed = why_passed_over(ranking.passed_over[0], ranking.winner)
    assert passed.startswith("trial 0 (3.0000) sounds worse") and "CER 45% vs 10%" in passed
    assert recommend(study).trial_number == 1


def test_babbling_past_the_text_is_sounding_worse(tmp_path):
    study = study_with(
        tmp_path, (3.00, probes(0.80, 0.10, speech_after_text=2, hit_length_cap=1)), (3.20, probes(0.78, 0.11))
    )
    winner = rank(study).winner
    assert winner.number == 1
    judged = rank(study).verdicts[0].sound
    assert judged.sounds_worse and "it babbles: 3 of 5 samples" in judged.reasons[0]


def test_differences_inside_the_noise_are_not_reasons(tmp_path):
    # CER 14 % vs the base's 10 %: inside the noise (±5 % for 5 texts); one babbling sample: below the margin of 2
    near = judge_sound(probes(0.62, 0.14, too_long=1), BASE, improved=True)
    assert not near.sounds_worse and not near.diverges and near.reasons == []
    # a similarity 0.03 below the base's is inside 2 standard errors of 5 texts (±0.05)
    assert not judge_sound(probes(0.57, 0.10), BASE, improved=True).diverges
    # but a 6-point CER rise after the loss improved is beyond it: a divergence, not yet "sounds worse"
    risen = judge_sound(probes(0.62, 0.16), BASE, improved=True)
    assert risen.diverges and not risen.sounds_worse


def test_loss_quality_divergence_is_named_in_the_recommendation(tmp_path):
    study = study_with(tmp_path, (3.00, probes(0.45, 0.12)))
    verdict = rank(study).winner
    assert verdict.sound.diverges and not verdict.sound.sounds_worse
    text = " ".join(recommend(study).reasons)
    assert (
        "Loss-quality divergence: its validation loss improved on the base model's, but its speaker "
        "similarity fell, 0.45 vs 0.60" in text
    )
    assert "By ear: speaker similarity 0.45 (base model 0.60, the target's own held-out clips 0.92)" in text


def test_a_near_tie_goes_to_the_higher_similarity_only_beyond_the_noise(tmp_path):
    # within the 1 % seed noise in loss; trial 1 trains the same share, sounds clearly more like the target
    study = study_with(tmp_path, (3.000, probes(0.70, 0.10)), (3.010, probes(0.85, 0.10)))
    ranking = rank(study)
    assert ranking.winner.number == 1 and "speaker similarity 0.85 against trial 0 0.70" in ranking.tiebreak
    assert any("sounds most like the target" in r for r in recommend(study).reasons)
    # 0.72 vs 0.70 is inside the noise: the usual rule (share, then loss) decides, and no reason by ear
    close = (
        study_with(tmp_path / "b", (3.000, probes(0.70, 0.10)), (3.010, probes(0.72, 0.10)))
        if (tmp_path / "b").mkdir() is None
        else None
    )
    ranking = rank(close)
    assert ranking.winner.number == 0 and ranking.tiebreak is None


def test_without_probe_figures_nothing_changes(tmp_path):
    study = study_with(tmp_path, (3.00, None), (3.20, None))
    ranking = rank(study)
    assert ranking.winner.number == 0 and ranking.tiebreak is None
    assert all(v.sound is None for v in ranking.verdicts)
    assert not any(r.startswith("By ear") for r in recommend(study).reasons)
