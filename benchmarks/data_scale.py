"""Cost of the data side as the training set grows: reading, tokenizing, cache size, teacher logits.

Builds training sets of about ``--sizes`` questions from the real SQuAD 1.1 train file (442 articles,
87,599 answerable questions) and measures, per size, what ``prepare_data`` costs:

* a training set is SQuAD 2.0-shaped: two thirds answerable questions (whole articles, in file
  order) plus ``data.synthetic_unanswerable_fraction = 0.5`` (one synthetic unanswerable question per
  two answerable ones, asked of another paragraph of the same article: ``data/synthetic.py``), so
  130k questions are the 87.6k real ones plus 43.8k synthetic, as SQuAD 2.0 train is 87k + 43k.
  A size that needs more than the file's answerable questions repeats real articles under fresh
  titles and ids (``"#copy2"``, ...); the output says how many questions are such copies.
* validation and test come from the SQuAD 2.0 dev file (``split_file``), as in a real run;
* ``cold``: a fresh cache folder; read + split + tokenize the three parts and write the feature
  cache (``prepare_data``, timed in pieces); ``warm``: a second process, the same call, every part a
  cache hit (it still reads the JSON and fingerprints the questions: that is what a trial pays);
* peak memory: ``ru_maxrss`` of the process that did the work (``resource.getrusage``: each phase runs
  in its own child process, so one size's peak is not another's);
* disk: the training part's feature cache entry (``du`` of its folder);
* teacher logits: their cache holds two float16 arrays of one value per token, so its size is
  exact from the token count; the time of the teacher's one pass is EXTRAPOLATED from a random
  sample of ``--teacher-sample`` training windows run through the shipped teacher
  (teachers/minilm-l6-squad2) on this machine's CPU threads, times windows / sample.

Usage (from the repository root; each size's work folder holds its files and cache, then is removed
unless ``--keep``)::

    python benchmarks/data_scale.py --sizes 10000 40000 130000 \\
        --squad1 ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz \\
        --split-file ../shared/data/squad2/dev-v2.0.json --out benchmarks/tables/data_scale.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

UNANSWERABLE_FRACTION = 0.5  # synthetic unanswerable per answerable question: a third of the set, as in SQuAD 2.0
TEACHER = Path("teachers/minilm-l6-squad2")
LOGITS_BYTES_PER_TOKEN = 2 * np.dtype(np.float16).itemsize  # start and end, float16
NPY_HEADER_BYTES = 128


def read_articles(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)["data"]


def article_copy(article: dict, copy: int) -> dict:
    """A real article under a fresh title and fresh question ids (``#copyN``)."""
    suffix = f"#copy{copy}"
    paragraphs = [{"context": p["context"],
                   "qas": [{**qa, "id": qa["id"] + suffix} for qa in p["qas"]]} for p in article["paragraphs"]]
    return {"title": article["title"] + suffix, "paragraphs": paragraphs}


def training_articles(articles: list[dict], answerable: int) -> tuple[list[dict], int]:
    """Whole articles in file order until ``answerable`` questions; real articles repeat under fresh
    titles when the file has too few. Returns the articles and how many questions are copies."""
    chosen, total, copied, copy = [], 0, 0, 1
    while total < answerable:
        for article in articles:
            if total >= answerable:
                break
            chosen.append(article if copy == 1 else article_copy(article, copy))
            questions = sum(len(p["qas"]) for p in article["paragraphs"])
            total += questions
            copied += questions if copy > 1 else 0
        copy += 1
    return chosen, copied


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def settings_for(train_file: Path, split_file: str):
    from paretodistill.config import DataSettings

    return DataSettings(split_file=split_file, extra_train_files=(str(train_file),), use_split_train=False,
                        synthetic_unanswerable_fraction=UNANSWERABLE_FRACTION)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def cold_phase(work: Path, split_file: str, teacher_sample: int) -> dict:
    """Read + tokenize into a fresh cache, timed in pieces; then the teacher on a sample of windows."""
    from paretodistill.data.features import cached_features
    from paretodistill.data.prepare import select_parts
    from paretodistill.models.loading import load_tokenizer

    tokenizer = load_tokenizer(TEACHER)
    settings, cache = settings_for(work / "train.json", split_file), work / "cache"
    started, cpu_started = time.perf_counter(), time.process_time()
    parts = select_parts(settings, log=lambda _: None)
    read = time.perf_counter() - started
    train = cached_features(parts.train.examples, tokenizer, settings.features, cache)
    train_done = time.perf_counter()
    for part in (parts.validation, parts.test):
        cached_features(part.examples, tokenizer, settings.features, cache)
    ended, cpu = time.perf_counter(), time.process_time() - cpu_started
    unanswerable = sum(e.is_impossible for e in parts.train.examples)
    return {"questions": len(parts.train.examples), "unanswerable": unanswerable, "windows": len(train),
            "tokens": train.num_tokens(), "read_s": read, "tokenize_train_s": train_done - started - read,
            "tokenize_eval_s": ended - train_done, "cold_total_s": ended - started, "cold_cpu_s": cpu,
            "cold_peak_rss_mb": peak_rss_mb(), "cache_bytes": du(Path(train.input_ids.filename).parent),
            **teacher_timing(train, teacher_sample)}


def teacher_timing(features, sample: int) -> dict:
    """Seconds per window of the shipped teacher on a random sample of windows (CPU, this process's threads)."""
    import torch

    from paretodistill.evaluation.inference import predict_logits
    from paretodistill.models.loading import load_qa_model

    teacher = load_qa_model(TEACHER).eval()
    indices = np.sort(np.random.default_rng(0).choice(len(features), min(sample, len(features)), replace=False))
    subset = features.take(indices)
    predict_logits(teacher, subset.take(np.arange(min(16, len(subset)))), 16)  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    predict_logits(teacher, subset, 64)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"teacher_sample_windows": len(indices), "teacher_threads": torch.get_num_threads(),
            "teacher_s_per_window": seconds / len(indices), "teacher_cpu_s_per_window": cpu / len(indices)}


def warm_phase(work: Path, split_file: str) -> dict:
    """The same ``prepare_data`` call a trial makes, every part a cache hit."""
    from paretodistill.data.prepare import prepare_data
    from paretodistill.models.loading import load_tokenizer

    tokenizer = load_tokenizer(TEACHER)
    started, cpu_started = time.perf_counter(), time.process_time()
    prepare_data(settings_for(work / "train.json", split_file), tokenizer, work / "cache", log=lambda _: None)
    return {"warm_total_s": time.perf_counter() - started, "warm_cpu_s": time.process_time() - cpu_started,
            "warm_peak_rss_mb": peak_rss_mb()}


def run_child(phase: str, work: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", phase, "--work", str(work), "--split-file", args.split_file,
               "--teacher-sample", str(args.teacher_sample)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)  # stderr: shown
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_size(size: int, articles: list[dict], args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="data-scale-", dir=args.work_root))
    try:
        answerable = round(size / (1 + UNANSWERABLE_FRACTION))
        chosen, copied = training_articles(articles, answerable)
        (work / "train.json").write_text(json.dumps({"version": "1.1", "data": chosen}))
        row = {"size": size, "articles": len(chosen), "copied_questions": copied}
        row.update(run_child("cold", work, args))
        row.update(run_child("warm", work, args))
        row["logits_bytes"] = 2 * NPY_HEADER_BYTES + LOGITS_BYTES_PER_TOKEN * row["tokens"]
        row["teacher_projected_s"] = row["teacher_s_per_window"] * row["windows"]
        row["teacher_projected_cpu_s"] = row["teacher_cpu_s_per_window"] * row["windows"]
        row["load_average"] = os.getloadavg()[0]
        return row
    finally:
        if args.keep:
            print(f"kept {work} (train.json, cache/)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def markdown(rows: list[dict]) -> str:
    """Two tables: preparing the features (wall and CPU seconds, memory, disk); the teacher logits."""
    lines = ["| target | questions (unanswerable) | copied | windows | tokens | read s | tokenize train s | "
             "tokenize val+test s | cold total s (CPU s) | cold peak RSS MB | warm total s (CPU s) | "
             "warm peak RSS MB | feature cache MB | load avg |", "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {r['questions']:,} ({r['unanswerable']:,}) | {r['copied_questions']:,} | "
            f"{r['windows']:,} | {r['tokens']:,} | {r['read_s']:.1f} | {r['tokenize_train_s']:.1f} | "
            f"{r['tokenize_eval_s']:.1f} | {r['cold_total_s']:.1f} ({r['cold_cpu_s']:.1f}) | "
            f"{r['cold_peak_rss_mb']:.0f} | {r['warm_total_s']:.1f} ({r['warm_cpu_s']:.1f}) | "
            f"{r['warm_peak_rss_mb']:.0f} | {r['cache_bytes'] / 1e6:.1f} | {r['load_average']:.1f} |")
    lines += ["", "| target | windows | logits cache MB | bytes / window | teacher s / window (CPU s) | "
              "teacher pass s, EXTRAPOLATED (CPU s) | sample |", "|" + "---|" * 7]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {r['windows']:,} | {r['logits_bytes'] / 1e6:.1f} | "
            f"{r['logits_bytes'] / r['windows']:.0f} | {r['teacher_s_per_window']:.3f} "
            f"({r['teacher_cpu_s_per_window']:.3f}) | {r['teacher_projected_s']:.0f} "
            f"({r['teacher_projected_cpu_s']:.0f}) | {r['teacher_sample_windows']} windows, "
            f"{r['teacher_threads']} threads |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 130_000])
    parser.add_argument("--squad1", default="../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz")
    parser.add_argument("--split-file", default="../shared/data/squad2/dev-v2.0.json")
    parser.add_argument("--teacher-sample", type=int, default=256, help="windows the teacher's time is measured on")
    parser.add_argument("--work-root", default=None, help="where the temporary files go (default: the system's)")
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's folder (train.json, cache/): worker_memory.py --work can reuse it")
    parser.add_argument("--child", choices=["cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        phase = cold_phase(Path(args.work), args.split_file, args.teacher_sample) if args.child == "cold" \
            else warm_phase(Path(args.work), args.split_file)
        print(json.dumps(phase))
        return
    articles = read_articles(args.squad1)
    rows = []
    for size in args.sizes:
        rows.append(measure_size(size, articles, args))
        print(json.dumps(rows[-1]), flush=True)
    table = markdown(sorted(rows, key=lambda row: row["size"]))
    print(table)
    if args.out:
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
