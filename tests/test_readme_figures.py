"""README figures are the committed output of the command next to them.

The benchmark table in the README and benchmarks/results/bench.md must be what
benchmarks/report.py makes of the committed bench.json (written by
``python -m benchmarks.run``), so no figure is edited by hand or left behind
when the results are regenerated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from benchmarks.report import markdown, table_rows

REPO = Path(__file__).resolve().parents[1]

RESULTS = REPO / "benchmarks" / "results"


def section(title: str, page: str = "README.md") -> str:
    """The text of ``page`` (the README unless named) under ``## title`` up to the next ``## `` heading."""
    text = (REPO / page).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_readme_benchmark_table_is_the_committed_results() -> None:
    results = json.loads((RESULTS / "bench.json").read_text())
    expected = ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    got = [line for line in section("Benchmarks").splitlines()
           if line.startswith("| ") and not line.startswith(("| comparison", "|---"))]
    assert got == expected
    assert "python -m benchmarks.run --model edge/models/default.tflite --run runs/default" in section("Benchmarks")


def test_committed_bench_md_is_made_from_bench_json() -> None:
    results = json.loads((RESULTS / "bench.json").read_text())
    assert (RESULTS / "bench.md").read_text() == markdown(results)


def test_committed_results_name_no_machine_paths() -> None:
    context = json.loads((RESULTS / "bench.json").read_text())["context"]
    assert not Path(context["model"]).is_absolute() and not Path(context["run"]).is_absolute()
    absolute = re.compile(r"(?:^|[\s(`'\"])/[A-Za-z]")
    assert not absolute.search(context["clips"])
    assert not absolute.search((RESULTS / "bench.md").read_text())
    for report in sorted(RESULTS.glob("*.json")):
        results = json.loads(report.read_text())
        rows = results.get("folds", []) if isinstance(results.get("folds"), list) else []
        named = [row["model"] for row in [results, *rows]
                 if isinstance(row, dict) and isinstance(row.get("model"), str)]
        assert not any(Path(model).is_absolute() for model in named), report.name


def test_readme_default_recipe_row_is_the_packaged_model() -> None:
    """The Training table's default row quotes the figures `convert` stored in the packaged model."""
    from audiomnist_edge.model import DEFAULT_MODEL, Model

    verification = Model.load(DEFAULT_MODEL).metadata["verification"]
    row = next(line for line in section("Training").splitlines() if "(default)**" in line)
    assert f"**{verification['keras_accuracy']:.3f}** (int8 {verification['tflite_accuracy']:.3f})" in row


def test_readme_hd_en_pocketsphinx_figures_are_the_committed_results() -> None:
    """The HD-EN comparison quoted under "Capture conditions" is conditions-hd-en.json's pooled table."""
    pooled = json.loads((RESULTS / "conditions-hd-en.json").read_text())["pooled"]
    ours, sphinx = pooled["accuracy"]["ours"], pooled["accuracy"]["pocketsphinx"]
    text = " ".join(section("Training").split())
    assert f"({pooled['n']})" in text
    assert f"clean {100 * ours['clean']:.1f}% against {100 * sphinx['clean']:.1f}%" in text
    assert (f"16 conditions {100 * pooled['mean']['ours']:.1f}% against "
            f"{100 * pooled['mean']['pocketsphinx']:.1f}%") in text
    assert all(ours[c] > sphinx[c] for c in ours)


def test_readme_background_gate_figures_are_the_committed_results() -> None:
    """docs/listening.md's --background-db figures ("CONDITION off -> on", "CORPUS CONDITION off -> on")
    are those of background.json and of stream-folds.json against stream-folds-background.json."""
    text = " ".join(section("From blocks to decisions", "docs/listening.md").split())
    text = text[text.index("Background talk:"):text.index("- Each utterance")]
    clips = json.loads((RESULTS / "background.json").read_text())
    off, on = ({**accuracy, "mean": clips["mean"][gate]} for gate, accuracy in clips["accuracy"].items())
    quoted = re.findall(r"(?<![\w-])(?<!fsdd )(?<!hd-en )([\w-]+) (\d\.\d{3}) -> (\d\.\d{3})", text)
    single = [(name, a, b) for name, a, b in quoted if name in off]
    assert {name for name, *_ in single} >= {"babble-20dB", "babble-10dB", "clean", "mean"}
    for name, a, b in single:
        assert (a, b) == (f"{off[name]:.3f}", f"{on[name]:.3f}"), name
    streams = [json.loads((RESULTS / f"{stem}.json").read_text())["streams"]
               for stem in ("stream-folds", "stream-folds-background")]
    assert json.loads((RESULTS / "stream-folds-background.json").read_text())["background_db"] == 12
    quoted_streams = re.findall(r"(fsdd|hd-en) ([\w.-]+) (\d\.\d{3}) -> (\d\.\d{3})", text)
    assert len(quoted_streams) >= 5
    for corpus, name, a, b in quoted_streams:
        [key] = [k for k in streams[0] if k.startswith(corpus + " ")]
        assert (a, b) == tuple(f"{s[key][name]['sequence_score']:.3f}" for s in streams), (corpus, name)
    assert "python -m benchmarks.background_gate --folds runs/default" in text
    assert "--background-db 12`" in text


def test_where_it_stands_quotes_the_committed_results() -> None:
    """The summary table's stream, rejection, PocketSphinx, speed and official figures are the committed results'."""
    from audiomnist_edge.model import DEFAULT_MODEL, Model

    text = section("Where it stands")
    results = {stem: json.loads((RESULTS / f"{stem}.json").read_text())
               for stem in ("stream-folds", "conditions", "bench")}
    streams = results["stream-folds"]["streams"]
    [fsdd] = [v for k, v in streams.items() if k.startswith("fsdd ")]
    [hd_en] = [v for k, v in streams.items() if k.startswith("hd-en ")]
    assert f"| {fsdd['clean']['sequence_score']:.3f}; {hd_en['clean']['sequence_score']:.3f} |" in text
    lowest = min(c["sequence_score"] for corpus in streams.values() for c in corpus.values())
    assert lowest == fsdd["quiet-20dB"]["sequence_score"] and f"| {lowest:.3f} |" in text
    alarms = results["stream-folds"]["false_alarms"]
    assert alarms["noise"]["digits"] == alarms["hum"]["digits"] == 0
    assert alarms["noise"]["minutes"] == alarms["hum"]["minutes"] == 240
    assert f"| {100 * alarms['non-digit speech']['reported_as_digit']:.1f}% |" in text
    pooled = results["conditions"]["pooled"]
    ours, sphinx = pooled["accuracy"]["ours"], pooled["accuracy"]["pocketsphinx"]
    assert pooled["n"] == 300
    assert (f"| {ours['clean']:.3f} vs {sphinx['clean']:.3f}; "
            f"{pooled['mean']['ours']:.3f} vs {pooled['mean']['pocketsphinx']:.3f} |") in text
    bench = results["bench"]
    assert f"| {bench['stages']['end_to_end']['p50']:.2f} ms |" in text
    cold, rss = bench["process"]["cold_start_ms"], bench["process"]["peak_rss_mb"]
    assert (f"| {cold['edge']['median']:.0f} vs {cold['tensorflow_lite']['median']:,.0f} ms; "
            f"{rss['edge']['median']:.0f} vs {rss['tensorflow_lite']['median']:.0f} MB |") in text
    verification = Model.load(DEFAULT_MODEL).metadata["verification"]
    assert f"| {verification['tflite_accuracy']:.3f} |" in text


def test_quiet_condition_figures_are_the_committed_speaker_snr_results() -> None:
    """docs/training.md's per-speaker quiet-20dB figures are speaker-snr.json's."""
    results = json.loads((RESULTS / "speaker-snr.json").read_text())
    rows = {row["speaker"]: row for row in results["speakers"]}
    text = " ".join(section("Under the capture conditions", "docs/training.md").split())
    assert f"python -m benchmarks.speaker_snr --folds {results['run']}" in text
    theo, yweweler = rows["theo"], rows["yweweler"]
    assert f"theo scores {theo['quiet']:.3f} and yweweler {yweweler['quiet']:.3f}" in text
    assert f"({theo['quiet_snr_db']:.1f} and {yweweler['quiet_snr_db']:.1f} dB)" in text
    others = [row for name, row in rows.items() if name not in ("theo", "yweweler")]
    pooled = sum(row["quiet"] * row["clips"] for row in others) / sum(row["clips"] for row in others)
    assert f"the other {len(others)} speakers together score {pooled:.3f}" in text
    for snr in ("0", "5"):
        means = [f"{np.mean([r['white'][snr] for r in rows.values() if r['corpus'] == c]):.2f}"
                 for c in ("fsdd", "hd-en")]
        assert f"mean {means[0]}" in text and (f"against {means[1]}" in text or f"(mean {means[1]})" in text)


def test_heard_speakers_table_is_the_committed_condition_results() -> None:
    """docs/training.md's table of FSDD speakers never heard and heard is conditions-fsdd.json's pooled
    figures beside conditions-heard.json's, every condition and the mean."""
    never_run = json.loads((RESULTS / "conditions-fsdd.json").read_text())
    heard_run = json.loads((RESULTS / "conditions-heard.json").read_text())
    never, (heard,) = never_run["pooled"], heard_run["sets"]
    text = section("Under the capture conditions", "docs/training.md")
    for run in (never_run, heard_run):
        assert run["command"].replace("python -m", ".venv/bin/python -m") in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()
            if line.startswith("| ") and line.count("|") == 4}
    assert set(never["accuracy"]["ours"]) == set(heard["result"]["accuracy"]["ours"])
    for condition, accuracy in never["accuracy"]["ours"].items():
        assert rows[condition] == (f"| {condition} | {accuracy:.3f} | "
                                   f"{heard['result']['accuracy']['ours'][condition]:.3f} |")
    assert rows["mean"] == f"| mean | {never['mean']['ours']:.3f} | {heard['result']['mean']['ours']:.3f} |"
    short = sum(value < 0.93 for value in heard["result"]["accuracy"]["ours"].values())
    assert f"yet {short} of the 16 conditions stay under 0.93" in " ".join(text.split())
    assert f"under 0.93 in {short} of the 16" in " ".join((REPO / "README.md").read_text().split())


def test_listening_quotes_the_packaged_models_fsdd_streams() -> None:
    """docs/listening.md's figures for the packaged model's streams of FSDD speakers it heard are stream.json's."""
    streams = json.loads((RESULTS / "stream.json").read_text())["streams"]
    (fsdd,) = [scores for name, scores in streams.items() if name.startswith("FSDD takes 0-4")]
    text = " ".join(section("Stream benchmark", "docs/listening.md").split())
    score = {name: f"{row['sequence_score']:.3f}" for name, row in fsdd.items()}
    assert f"it scores {score['clean']} on clean streams and {score['padded']} on padded ones" in text
    assert (f"but {score['quiet-20dB']} when they speak 20 dB quieter and {score['reverb-0.6s']} "
            "in the 0.6 s room") in text
    assert float(score["quiet-20dB"]) < 0.92 and float(score["reverb-0.6s"]) < 0.92 <= float(score["clean"])


def test_listening_quotes_the_heard_voices_rejection_reports() -> None:
    """docs/listening.md's figures for a fold-0 model that heard the benchmark's voices, and for the default's
    fold-0 model, are benchmarks/results/heard-voices/'s reports: words passed and held-out digits, per gate."""
    words = "flite + festival non-digit words (unseen people and words)"
    digits = "digits of each fold's held-out speakers"

    def gates(report: Path) -> dict[float, tuple[str, str]]:
        rows = json.loads(report.read_text())["unknown_rows"]
        return {row["unknown_at"]: (f"{100 * row[words]:.1f}%", f"{100 * row[digits]:.1f}%")
                for row in rows if row["keep_training_digits"] is None}

    heard = gates(RESULTS / "heard-voices" / "rejection-folds.json")
    default = gates(RESULTS / "heard-voices" / "default-fold-0" / "rejection-folds.json")
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"that heard those three voices say other words ({heard[0.8][0]};" in readme
    text = " ".join(section("Rejecting what is not a digit", "docs/listening.md").split())
    assert (f"passes {heard[0.8][0]} of those voices' non-digit words at the default gates and {heard[0.8][1]} of its "
            f"held-out digits, against {default[0.8][0]} and {default[0.8][1]} for the default's fold-0 model") in text
    assert (f"`--unknown-at 0.5` gives {heard[0.5][0]} and {heard[0.5][1]} (the default's model: {default[0.5][0]} "
            f"and {default[0.5][1]}), 0.3 gives {heard[0.3][0]} and {heard[0.3][1]} "
            f"({default[0.3][0]} and {default[0.3][1]})") in text
