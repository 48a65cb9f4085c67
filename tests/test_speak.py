"""The fine-tuned model speaks: a tiny random-weight XTTS v2 folder in the released layout, through coqui's
own loader and Xtts.inference, into a 24 kHz wav; and every user mistake is one line naming the file."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from xtts_tune.model.released import SPEAKER_NAMES, build_released_folder
from xtts_tune.model.speak import (
    SpeakError,
    load_voice_model,
    speak_samples,
    synthesize,
)
from xtts_tune.record import write_study

CAP = 1.5  # seconds: random weights never emit the stop token, so every call runs to the cap
SENTENCE = "Hello world, this is a test."


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    return build_released_folder(tmp_path_factory.mktemp("released") / "xtts", decoder=True, speakers=True)


@pytest.fixture(scope="module")
def gpt_only(tmp_path_factory) -> Path:
    """No HiFi-GAN decoder keys (like the tiny embedded base) and no speakers: cheap (~6 MB model.pth)."""
    return build_released_folder(tmp_path_factory.mktemp("gpt_only") / "xtts", decoder=False, speakers=False)


@pytest.fixture(scope="module")
def ref_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "ref.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(path), "hello, this is the reference voice for the test"], check=True)
    else:  # 2 s of quiet noise at 22.05 kHz
        pcm = (np.random.default_rng(0).normal(0, 0.1, 44100).clip(-1, 1) * 32767).astype("<i2")
        with wave.open(str(path), "wb") as f:
            f.setnchannels(1), f.setsampwidth(2), f.setframerate(22050), f.writeframes(pcm.tobytes())
    return path


def _linked(src: Path, dst: Path, names=("config.json", "model.pth", "vocab.json", "dvae.pth", "mel_stats.pth")):
    """A folder holding links to some of ``src``'s files (cheap: model.pth is ~90 MB)."""
    dst.mkdir()
    for name in names:
        (dst / name).symlink_to(src / name)
    return dst


def _read(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as f:
        return f.getparams(), np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.slow
def test_the_folder_has_the_released_layout(released):
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    assert {p.name for p in released.iterdir()} == {
        "config.json",
        "vocab.json",
        "model.pth",
        "dvae.pth",
        "mel_stats.pth",
        "speakers_xtts.pth",
    }
    config = json.loads((released / "config.json").read_text())
    args = config["model_args"]
    assert (args["gpt_layers"], args["gpt_n_model_channels"], args["decoder_input_dim"]) == (2, 64, 64)
    assert config["audio"]["output_sample_rate"] == 24000 and "en" in config["languages"]
    state = torch.load(released / "model.pth", weights_only=True)["model"]
    assert any(k.startswith("gpt.") for k in state) and any(k.startswith("hifigan_decoder.") for k in state)
    codes = torch.load(released / "dvae.pth", weights_only=True)["codebook.embed"].shape[1]
    assert codes == args["gpt_num_audio_tokens"] - 2
    speakers = torch.load(released / "speakers_xtts.pth", weights_only=True)
    assert list(speakers) == list(SPEAKER_NAMES)
    voice = speakers[SPEAKER_NAMES[0]]
    assert voice["gpt_cond_latent"].shape == (1, 32, 64) and voice["speaker_embedding"].shape == (1, 512, 1)
    assert isinstance(load_voice_model(released, device="cpu").model.hifigan_decoder, HifiDecoder)


@pytest.mark.slow
def test_the_project_loader_accepts_the_folder(released):
    from xtts_tune.model.base import load_base

    assert load_base(released).num_layers == 2


@pytest.mark.slow
def test_the_model_speaks_a_24k_wav_and_a_seed_repeats_it(released, ref_wav, tmp_path):
    result = synthesize(released, SENTENCE, ref_wav, tmp_path / "out" / "a.wav", device="cpu", seed=1, max_seconds=CAP)
    params, pcm = _read(result.path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 24000) == (1, 2, result.sample_rate)
    assert 0.1 < result.seconds <= CAP + 0.1 and result.seconds == pytest.approx(len(pcm) / 24000)
    assert np.isfinite(pcm.astype(np.float64)).all() and np.abs(pcm).max() > 0
    assert [p.name for p in result.path.parent.iterdir()] == ["a.wav"]  # no temp file left behind
    again = synthesize(released, SENTENCE, ref_wav, tmp_path / "b.wav", device="cpu", seed=1, max_seconds=CAP)
    assert again.path.read_bytes() == result.path.read_bytes()
    other = synthesize(released, SENTENCE, ref_wav, tmp_path / "c.wav", device="cpu", seed=2, max_seconds=CAP)
    assert other.path.read_bytes() != result.path.read_bytes()


@pytest.mark.slow
def test_speak_says_when_it_stopped_at_max_seconds(released, ref_wav, tmp_path, capsys):
    from xtts_tune.cli import main

    # random weights never emit the stop token: the audio ends at the cap, and the command says so
    assert (
        main(
            [
                "speak",
                "--model",
                str(released),
                "--text",
                SENTENCE,
                "--speaker-wav",
                str(ref_wav),
                "--out",
                str(tmp_path / "a.wav"),
                "--device",
                "cpu",
                "--max-seconds",
                "0.3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "stopped at --max-seconds 0.3: the model had not finished the sentence" in out
    result = synthesize(released, SENTENCE, ref_wav, tmp_path / "b.wav", device="cpu", max_seconds=0.3)
    assert result.capped_at == 0.3


def test_samples_load_once_and_match_single_calls(released, ref_wav, tmp_path, monkeypatch):
    from TTS.tts.models.xtts import Xtts

    loads = []
    original = Xtts.load_checkpoint
    monkeypatch.setattr(Xtts, "load_checkpoint", lambda self, *a, **k: loads.append(1) or original(self, *a, **k))
    paths = speak_samples(released, ["One.", SENTENCE], ref_wav, tmp_path / "samples", device="cpu", max_seconds=1.0)
    assert [p.name for p in paths] == ["sample_00.wav", "sample_01.wav"] and len(loads) == 1
    single = synthesize(released, SENTENCE, ref_wav, tmp_path / "single.wav", device="cpu", max_seconds=1.0)
    assert paths[1].read_bytes() == single.path.read_bytes()


@pytest.mark.slow
def test_a_stored_speaker_and_a_folder_without_speakers(released, ref_wav, tmp_path):
    stored = synthesize(
        released, "Hi.", None, tmp_path / "s.wav", speaker=SPEAKER_NAMES[1], device="cpu", max_seconds=0.5
    )
    assert stored.seconds > 0.1
    with pytest.raises(SpeakError, match="no speaker 'nobody'.*Tiny Speaker A") as exc:
        synthesize(released, "Hi.", None, tmp_path / "x.wav", speaker="nobody", device="cpu")
    _one_line(exc, released / "speakers_xtts.pth")
    plain = _linked(released, tmp_path / "plain")
    assert synthesize(plain, "Hi.", ref_wav, tmp_path / "p.wav", device="cpu", max_seconds=0.5).seconds > 0.1
    assert load_voice_model(plain, device="cpu").speakers == []


def test_user_mistakes_are_one_line_naming_the_file(gpt_only, ref_wav, tmp_path):
    released = gpt_only  # every mistake here is refused before the weights load
    missing = tmp_path / "nowhere"
    with pytest.raises(SpeakError, match="model folder not found") as exc:
        synthesize(missing, SENTENCE, ref_wav, tmp_path / "o.wav")
    _one_line(exc, missing)
    required = ("config.json", "model.pth", "vocab.json")
    for name in required:
        partial = _linked(released, tmp_path / f"no_{name}", [n for n in required if n != name])
        with pytest.raises(SpeakError, match=f"{name}: missing") as exc:
            synthesize(partial, SENTENCE, ref_wav, tmp_path / "o.wav")
        _one_line(exc, partial / name)
    with pytest.raises(SpeakError, match="text to speak is empty") as exc:
        synthesize(released, "  \n ", ref_wav, tmp_path / "o.wav")
    _one_line(exc, tmp_path / "o.wav")
    with pytest.raises(SpeakError, match="speaker wav not found") as exc:
        synthesize(released, SENTENCE, tmp_path / "absent.wav", tmp_path / "o.wav")
    _one_line(exc, tmp_path / "absent.wav")
    # the folder's languages: en and es with the workplace's real vocabulary (../shared/data), en with the tiny
    # base's where a fresh clone has no ../shared
    languages = ", ".join(json.loads((released / "config.json").read_text())["languages"])
    assert languages.startswith("en")
    with pytest.raises(SpeakError, match=f"language 'xx' is not supported; choose one of {languages}$") as exc:
        synthesize(released, SENTENCE, ref_wav, tmp_path / "o.wav", language="xx")
    _one_line(exc, released / "config.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    for name in ("model.pth", "vocab.json"):
        (broken / name).write_bytes(b"")
    with pytest.raises(SpeakError, match="not a valid XTTS config") as exc:
        synthesize(broken, SENTENCE, ref_wav, tmp_path / "o.wav")
    _one_line(exc, broken / "config.json")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.slow
def test_unusable_speaker_wavs_and_model_files(released, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF this is not audio")
    short = tmp_path / "short.wav"
    with wave.open(str(short), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(22050), f.writeframes(b"\x10\x00" * 2000)
    for wav in (garbage, short):
        with pytest.raises(SpeakError, match="cannot be used as a speaker wav") as exc:
            synthesize(released, SENTENCE, wav, tmp_path / "o.wav", device="cpu")
        _one_line(exc, wav)
    truncated = _linked(released, tmp_path / "truncated", ["config.json", "vocab.json"])
    (truncated / "model.pth").write_bytes((released / "model.pth").read_bytes()[:4096])
    with pytest.raises(SpeakError, match="cannot be") as exc:  # a readable wav: the model file is what fails
        synthesize(truncated, SENTENCE, short, tmp_path / "o.wav", device="cpu")
    _one_line(exc, truncated / "model.pth")
    wrong = _linked(released, tmp_path / "wrong", ["model.pth", "vocab.json"])
    doc = json.loads((released / "config.json").read_text())
    doc["model_args"]["gpt_n_model_channels"] = 32
    (wrong / "config.json").write_text(json.dumps(doc))
    with pytest.raises(SpeakError, match="does not match config.json") as exc:
        synthesize(wrong, SENTENCE, short, tmp_path / "o.wav", device="cpu")
    _one_line(exc, wrong / "model.pth")


def test_a_folder_without_a_hifigan_decoder_is_refused(gpt_only, tmp_path, ref_wav):
    folder = gpt_only
    state = torch.load(folder / "model.pth", weights_only=True)["model"]
    assert any(k.startswith("gpt.") for k in state) and not any(k.startswith("hifigan_decoder.") for k in state)
    with pytest.raises(SpeakError, match="no HiFi-GAN decoder.*tiny embedded base") as exc:
        synthesize(folder, SENTENCE, ref_wav, tmp_path / "o.wav", device="cpu")
    _one_line(exc, folder / "model.pth")


@pytest.mark.slow
def test_the_embedded_tiny_base_is_refused_for_its_missing_decoder(tmp_path, ref_wav):
    from xtts_tune.model.base import embedded_base_path

    with pytest.raises(SpeakError, match="no HiFi-GAN decoder") as exc:
        synthesize(embedded_base_path(), SENTENCE, ref_wav, tmp_path / "o.wav", device="cpu")
    _one_line(exc, embedded_base_path() / "model.pth")


@pytest.mark.slow
def test_without_the_real_vocabulary_the_tiny_base_vocabulary_is_used(tmp_path, ref_wav, monkeypatch):
    from xtts_tune.model import released as released_module

    monkeypatch.setattr(released_module, "real_vocab_path", lambda: None)
    folder = build_released_folder(tmp_path / "xtts", speakers=False)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_args"]["gpt_number_text_tokens"] == 42 and config["languages"] == ["en"]
    from xtts_tune.model.base import load_base

    assert load_base(folder).tokenizer.get_number_tokens() == 42
    assert synthesize(folder, "Hi there.", ref_wav, tmp_path / "o.wav", device="cpu", max_seconds=0.5).seconds > 0.1
    # forgetting by ear needs another language the base speaks: an English-only base has none, so no plan
    from xtts_tune.search.forgetting_ear import ear_plan
    from xtts_tune.search.samples import SamplePlan

    plan = SamplePlan(folder=folder, base_fingerprint="x", texts=("Hi.",), speaker_wav=str(ref_wav), device="cpu")
    assert ear_plan(plan, 2) is None
    assert sorted(ear_plan(dataclasses.replace(plan, language="de"), 2).texts) == ["en"]


@pytest.mark.slow
def test_the_folder_xtts_tune_train_writes_speaks_in_coqui(released, demo_target, ref_wav, tmp_path):
    """The real user's last mile: train from a base with a HiFi-GAN decoder, then the folder `train` prints
    loads through coqui's Xtts.load_checkpoint and speaks; the printed speak command works as printed."""
    import sys

    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "studies" / "demo.yaml").read_text())
    doc.update(base_model=str(released), output_dir=str(tmp_path / "runs"), study_name="speaks")
    # `train` validates on the study's saved split: a split as a study saves it
    from xtts_tune.config import DataConfig
    from xtts_tune.data.split import make_split

    ids = [line.split("|")[0] for line in (demo_target / "metadata.csv").read_text().splitlines() if line]
    (tmp_path / "split.json").write_text(json.dumps(make_split(ids, DataConfig(val_fraction=0.2)).to_dict()))
    doc["data"].update(path=str(demo_target), demo_target=False, split_file=str(tmp_path / "split.json"))
    doc["train"].update(max_steps=2, eval_every=1)
    config = tmp_path / "speaks.yaml"
    config.write_text(yaml.safe_dump(doc))
    cli = [sys.executable, "-m", "xtts_tune.cli"]
    out = subprocess.run([*cli, "train", "--config", str(config)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    model_dir = tmp_path / "runs" / "speaks" / "model"
    assert f"XTTS folder (coqui's Xtts.load_checkpoint loads it): {model_dir}" in out.stdout
    # every base file a user needs, speakers_xtts.pth included; the GPT is stored once (the checkpoint holds
    # only what trained)
    assert {p.name for p in model_dir.iterdir()} == {
        "config.json",
        "model.pth",
        "dvae.pth",
        "mel_stats.pth",
        "vocab.json",
        "speakers_xtts.pth",
    }
    checkpoint = tmp_path / "runs" / "speaks" / "best_gpt.pth"
    assert checkpoint.stat().st_size < 0.5 * (model_dir / "model.pth").stat().st_size
    # coqui's own path, with the base's HiFi-GAN intact and the trained GPT weights in place
    voice = load_voice_model(model_dir, device="cpu")
    base_state = torch.load(released / "model.pth", weights_only=True)["model"]
    decoder = voice.model.hifigan_decoder.state_dict()
    assert all(
        torch.equal(decoder[k[len("hifigan_decoder.") :]], v)
        for k, v in base_state.items()
        if k.startswith("hifigan_decoder.")
    )
    assert not torch.equal(voice.model.gpt.mel_head.weight, base_state["gpt.mel_head.weight"])
    # the printed command, with one of the user's clips as the voice
    listen = next(line for line in out.stdout.splitlines() if line.startswith("listen: "))
    argv = (
        listen.split(": ", 1)[1]
        .replace("ONE_OF_YOUR_CLIPS.wav", str(ref_wav))
        .replace("hello.wav", str(tmp_path / "hello.wav"))
    )
    import shlex

    spoken = subprocess.run(
        [*cli, *shlex.split(argv)[1:], "--max-seconds", "1.5"], capture_output=True, text=True, timeout=600
    )
    assert spoken.returncode == 0, spoken.stderr
    params, pcm = _read(tmp_path / "hello.wav")
    assert params.framerate == 24000 and 0.1 * 24000 < len(pcm) <= 1.6 * 24000 and np.abs(pcm).max() > 0


@pytest.mark.slow
def test_kept_trials_speak_to_the_dashboard_and_the_report(released, demo_target, tmp_path):
    """A search on a base with a HiFi-GAN decoder: each kept trial's best checkpoint speaks the first
    validation texts; the wavs are dashboard audio artifacts and embedded players in the offline report.
    With the embedded base (no decoder) the report says why there are none."""
    import optuna
    import yaml

    from xtts_tune.config import config_from_dict
    from xtts_tune.report.page import build_report
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.storage import load_study

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "studies" / "demo.yaml").read_text())
    doc.update(base_model=str(released), output_dir=str(tmp_path / "runs"), study_name="listen")
    doc["data"].update(path=str(demo_target), demo_target=False)
    doc["train"].update(max_steps=1, eval_every=1)
    doc["search"].update(pruner="none", keep_top_k=1, samples=2, sample_max_seconds=0.5, forgetting_samples=1)
    doc["search"]["space"]["freeze_depth"] = {"low": 0, "high": 2}
    doc["train"]["freeze_depth"] = 1
    cfg = config_from_dict(doc, source=str(tmp_path / "listen.yaml"), root=tmp_path)
    events = []
    summary = run_search(cfg, n_trials=2, storage=f"sqlite:///{tmp_path / 'listen.db'}", progress=events.append)
    study = load_study("listen", summary.storage)
    said = [e["text"] for e in events if e["event"] == "message" and e.get("number") == 0]
    assert said[0].startswith("making 4 listening sample(s) with the best checkpoint")  # a line before minutes
    assert said[1].startswith("listening samples made in") and "sample_01.wav" in said[1]
    from xtts_tune.terminal import render_summary

    shown = render_summary(summary)
    assert "listening samples:" in shown
    assert all(e["path"] in shown for t in study.trials for e in t.user_attrs.get("samples") or [])
    spoken = [t for t in study.trials if t.user_attrs.get("samples")]
    assert spoken and spoken[0].number == 0  # trial 0 was the best when it ended: it was kept, so it spoke
    val = sorted(json.loads((tmp_path / "runs" / "listen" / "split.json").read_text())["val"])[:2]
    for t in spoken:
        entries = t.user_attrs["samples"]
        # the 2 validation texts, then search.short_samples (2) 1-3-word texts, where fine-tunes babble
        assert len(entries) == 4 and all(Path(e["path"]).is_file() for e in entries)
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert sorted(m.mimetype for m in metas) == ["application/json", *["audio/wav"] * 4, "image/png"]
    assert [e["text"] for e in spoken[0].user_attrs["samples"]] == [
        next(
            line.split("|")[2]
            for line in (demo_target / "metadata.csv").read_text().splitlines()
            if line.split("|")[0] == clip
        )
        for clip in val
    ] + ["Yes.", "Thank you."]
    page = build_report(study, tmp_path / "listen.html").read_text()
    assert page.count("<audio controls") == 4 * len(spoken) and "data:audio/wav;base64,UklGR" in page

    # the ears: every kept trial (trial 0, the guide's, among them), the base model and the target's own clips
    # are scored, and the figures show in the record, the dashboard note, the report and the summary
    from types import SimpleNamespace

    from optuna_dashboard import get_note

    from xtts_tune.record import StudyRecord, TrialRecord
    from xtts_tune.terminal import render_summary

    record = StudyRecord.from_study(study)
    assert record.probes_base["n_texts"] == 4 and record.probes_ceiling["n_texts"] >= 2
    assert record.probes_ceiling["similarity"] > record.probes_base["similarity"]  # random weights vs the voice
    for t in spoken:
        probes = TrialRecord.from_trial(t).probes
        assert probes["n_texts"] == 4 and 0 <= probes["similarity"] <= 1 and probes["cer"] is not None
        assert (Path(t.user_attrs["samples"][0]["path"]).parent / "probes.json").is_file()
        handle = SimpleNamespace(storage=study._storage, study=study, _trial_id=t._trial_id)  # get_note's reads
        assert "By ear: similarity " in get_note(handle)
    assert 'id="samples-table"' in page and "the target&#x27;s own held-out clips" in page
    from xtts_tune.export import export_best

    # (two evaluations per trial here: both inconclusive, so no recommendation; export a spoken trial by hand)
    exported = yaml.safe_load(export_best(study, tmp_path / "listen-best.yaml", trial_number=0).read_text())
    sound = exported["provenance"]["sound"]  # how the exported trial sounds, beside the base, with the weights
    assert sound["trial"]["n_texts"] == 4 and sound["base_model"] == record.probes_base
    assert [w["name"] for w in sound["probe_weights"]] == [
        "speaker encoder",
        "speech recognizer",
        "multilingual speech recognizer, part 1",
        "multilingual speech recognizer, part 2",
    ]
    assert 'id="plot-sound"' in page
    assert "by ear (speaker similarity" in render_summary(summary) and "  base model: similarity " in render_summary(
        summary
    )

    # forgetting by ear: the base and every kept trial speak a sentence in each of three other languages in the
    # shipped voice, heard by the multilingual Whisper in its language (a CER for every non-English language)
    other = [
        lang for lang in ("de", "es", "fr") if lang in json.loads((released / "config.json").read_text())["languages"]
    ]
    if not other:  # without ../shared/data's real vocabulary the layout folder speaks English only: nothing to hear
        assert "forget_ear_base" not in study.user_attrs and "forgetting by ear" not in render_summary(summary)
        return
    base_ear = study.user_attrs["forget_ear_base"]
    assert base_ear["voice"] == "the shipped voice forgetting_reference.wav"
    assert sorted(base_ear["languages"]) == other == ["de", "es", "fr"]
    for t in spoken:
        ear = TrialRecord.from_trial(t).forget_ear
        assert sorted(ear) == other, ear
        for lang, figures in ear.items():
            assert figures["n_texts"] == 1 and figures["cer"] >= 0 and -1 <= figures["similarity"] <= 1
            assert figures["base"] == base_ear["languages"][lang]
            assert (Path(t.user_attrs["run_dir"]) / "forgetting-ear" / lang / "sample_00.wav").is_file()
    shown = render_summary(summary)
    line = next(x for x in shown.splitlines() if x.startswith("forgetting by ear (other languages"))
    assert line.count("German CER ") == line.count("Spanish CER ") == line.count("French CER ") == len(spoken), line
    assert 'id="forgetting-ear-table"' in page and page.count('data-language="es"') == len(spoken)

    empty = optuna.create_study(study_name="no-decoder")
    write_study(empty, listening_samples="the base model has no HiFi-GAN decoder, so it cannot make audio")
    note = build_report(empty, tmp_path / "none.html").read_text()
    assert 'id="samples-note"' in note and "no HiFi-GAN decoder" in note
