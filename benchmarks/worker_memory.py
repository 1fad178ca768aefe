"""Memory of 1, 2, 4 ... concurrent trial processes that read the same features and teacher logits.

Starts N trial processes through the real local backend (``search.runner.LocalProcessBackend``:
spawned processes, as ``search.backend = "local"`` runs trials). Each runs ``memory_trial``, which
loads its inputs exactly as a distillation trial does (``distill.run``: ``load_teacher``,
``training_data``, ``teacher_logits``), reads every array once end to end (what one training epoch
and one validation pass touch), waits until all N have loaded, then reads its own
``/proc/self/smaps_rollup`` (RSS, PSS, private memory) and ``/proc/self/smaps`` (the PSS of the
mappings of cache files). PSS divides each shared page among the processes that map it: the fair
share. Arrays mapped from the cache are counted once in total, so their PSS per process falls as 1/N.

The training set is the SQuAD 2.0-shaped one of ``data_scale.py`` (``--size`` questions: SQuAD 1.1
train articles plus a third synthetic unanswerable questions; validation and test from the SQuAD 2.0
dev split). Its features are tokenized once into ``--work``/cache. The teacher's logits for them are
NOT computed (a full teacher pass over 130k questions takes hours on a CPU): the cache entry under the
real key is filled with placeholder float16 values of the real shape. Memory does not depend on the
values; the trial reads the entry exactly as it reads a real one.

``--cold`` removes the feature cache before each round: the N trials then tokenize at the same
time, as the first trials of a search on a new data set do; each builds the arrays in its own
memory, writes them, and (since the shared cache) reads back the one copy that won the rename.

Usage (from the repository root; ``--work`` is kept, so a second run skips the tokenizing)::

    python benchmarks/worker_memory.py --workers 1 2 4 --size 130000 --work ../worker-memory \\
        --squad1 ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz \\
        --split-file ../shared/data/squad2/dev-v2.0.json --out benchmarks/tables/worker_memory.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEACHER = HERE.parent / "teachers" / "minilm-l6-squad2"
BARRIER_TIMEOUT_S = 900


def smaps_rollup() -> dict[str, float]:
    """This process's Rss, Pss and private memory in MB, from ``/proc/self/smaps_rollup``."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["Rss"], "pss_mb": fields["Pss"],
            "private_mb": fields["Private_Clean"] + fields["Private_Dirty"]}


def mapped_pss(folder: str) -> dict[str, float]:
    """Rss and Pss (MB) of this process's mappings of files under ``folder`` (``/proc/self/smaps``)."""
    totals, inside = {"cache_rss_mb": 0.0, "cache_pss_mb": 0.0}, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
            inside = len(head) == 6 and head[5].startswith(folder)
        elif inside and line.startswith(("Rss:", "Pss:")):
            totals["cache_rss_mb" if line.startswith("Rss") else "cache_pss_mb"] += int(line.split()[1]) / 1024
    return totals


def read_everything(arrays) -> float:
    """Read each array end to end, in 16 MB blocks (the pages an epoch touches); a checksum, so it is done."""
    total = 0.0
    for array in arrays:
        flat = array.reshape(-1)
        step = max(1, (16 << 20) // max(1, flat.itemsize))
        for first in range(0, len(flat), step):
            total += float(np.asarray(flat[first:first + step], dtype=np.float64).sum())
    return total


def wait_for(folder: Path, prefix: str, count: int) -> None:
    deadline = time.time() + BARRIER_TIMEOUT_S
    while len(list(folder.glob(prefix + "*"))) < count:
        if time.time() > deadline:
            raise TimeoutError(f"only {len(list(folder.glob(prefix + '*')))} of {count} trials reached {prefix}")
        time.sleep(0.2)


def memory_trial(config, params, *, trial_dir, evaluate_test=False, log=print):
    """The inputs of a distillation trial, loaded as ``distill.run`` loads them; then the memory."""
    import torch

    from paretodistill.distill.run import load_teacher, teacher_logits, training_data
    from paretodistill.trial import TrialResult

    teacher_path, tokenizer, teacher = load_teacher(config, torch.device("cpu"), log)
    data = training_data(config, tokenizer, teacher_path, log)
    logits = teacher_logits(config, teacher, teacher_path, data, False, log)
    arrays = [getattr(features, name) for features in (data.train_features, data.validation_features)
              for name in ("input_ids", "token_type_ids", "offsets", "row_starts", "start_positions")]
    read_everything(arrays + [part for pair in logits for part in (pair.start, pair.end)])
    barrier = Path(params["barrier"])
    (barrier / f"loaded-{params['index']}").write_text("")
    wait_for(barrier, "loaded-", params["workers"])
    metrics = {**smaps_rollup(), **mapped_pss(str(Path(config.cache_dir).resolve())),
               "mapped_arrays": sum(isinstance(a, np.memmap) for a in arrays)}
    (barrier / f"measured-{params['index']}").write_text(json.dumps(metrics))
    wait_for(barrier, "measured-", params["workers"])  # stay alive until every trial has measured
    return TrialResult("ok", dict(params), metrics=metrics)


def experiment_config(work: Path, split_file: str):
    from paretodistill.config import DataSettings, ExperimentConfig, TeacherSettings

    data = DataSettings(split_file=str(Path(split_file).resolve()), extra_train_files=(str(work / "train.json"),),
                        use_split_train=False, synthetic_unanswerable_fraction=0.5)
    return ExperimentConfig(data=data, teacher=TeacherSettings(path=str(TEACHER)), device="cpu",
                            cache_dir=str(work / "cache"))


def prepare(work: Path, args: argparse.Namespace):
    """The training file, its features in the cache and placeholder teacher logits under the real keys."""
    from data_scale import UNANSWERABLE_FRACTION, read_articles, training_articles
    from paretodistill.data.prepare import prepare_data
    from paretodistill.distill.teacher_cache import STORED_DTYPE, cache_key, weights_fingerprint
    from paretodistill.models.loading import load_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "train.json").exists():
        chosen, _ = training_articles(read_articles(args.squad1), round(args.size / (1 + UNANSWERABLE_FRACTION)))
        (work / "train.json").write_text(json.dumps({"version": "1.1", "data": chosen}))
    config = experiment_config(work, args.split_file)
    data = prepare_data(config.data, load_tokenizer(TEACHER), config.cache_dir, log=lambda _: None)
    weights = weights_fingerprint(TEACHER)
    for features in (data.train_features, data.validation_features):
        directory = Path(config.cache_dir) / "teacher_logits" / cache_key(weights, features, "fp32")
        if not directory.exists():
            from paretodistill.data.array_cache import write_arrays  # only here: older code can run the trials

            placeholder = np.full(features.num_tokens(), 0.5, dtype=STORED_DTYPE)
            write_arrays(directory, {"start_logits": placeholder, "end_logits": placeholder}, "placeholder values")
    return config, {"questions": len(data.train.examples), "windows": len(data.train_features),
                    "tokens": data.train_features.num_tokens()}


def run_workers(count: int, config, work: Path) -> list[dict]:
    """``count`` memory trials at once through the local backend; their measurements."""
    from paretodistill.search.runner import LocalProcessBackend
    from paretodistill.search.worker import WorkerSpec

    barrier = work / f"barrier-{count}-{os.getpid()}-{time.time_ns()}"
    barrier.mkdir()
    backend = LocalProcessBackend(count)
    for index in range(count):
        params = {"index": index, "workers": count, "barrier": str(barrier)}
        backend.submit(index, WorkerSpec(stage="memory", number=index, params=params, config=config.to_dict(),
                                         trial_dir=str(barrier / f"trial-{index}"), sys_path=(str(HERE),),
                                         trial_function="worker_memory:memory_trial",
                                         threads=backend.threads_per_trial()))
    payloads = {}
    while len(payloads) < count:
        for key, message in backend.wait(5.0):
            if "result" in message:
                payloads[key] = message["result"]
    backend.close()
    failed = [p["failure_reason"] for p in payloads.values() if p["status"] != "ok"]
    if failed:
        raise RuntimeError(f"memory trial failed: {failed[0]}")
    return [payloads[index]["metrics"] for index in range(count)]


def markdown(rows: list[dict], shape: dict, label: str) -> str:
    lines = [f"{label}: {shape['questions']:,} training questions, {shape['windows']:,} windows, "
             f"{shape['tokens']:,} tokens\n",
             "| trial processes | RSS MB / process | PSS MB / process | private MB / process | "
             "cache files RSS MB / process | cache files PSS MB / process | sum of PSS MB | load avg |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['workers']} | {row['rss_mb']:.0f} | {row['pss_mb']:.0f} | {row['private_mb']:.0f} | "
                     f"{row['cache_rss_mb']:.0f} | {row['cache_pss_mb']:.0f} | {row['total_pss_mb']:.0f} | "
                     f"{row['load_average']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--size", type=int, default=130_000)
    parser.add_argument("--work", required=True, help="kept between runs: the training file and the cache")
    parser.add_argument("--squad1", default="../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz")
    parser.add_argument("--split-file", default="../shared/data/squad2/dev-v2.0.json")
    parser.add_argument("--label", default="this checkout", help="the code measured, for the table's title")
    parser.add_argument("--cold", action="store_true",
                        help="remove the feature cache before each round: the trials tokenize at once, as a "
                             "search's first trials do with a new data set")
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    config, shape = prepare(work, args)
    rows = []
    for count in args.workers:
        if args.cold:  # every trial finds no features and tokenizes; the teacher's placeholders stay
            shutil.rmtree(Path(config.cache_dir) / "features", ignore_errors=True)
        measured = run_workers(count, config, work)
        mean = {name: float(np.mean([m[name] for m in measured])) for name in measured[0]}
        rows.append({"workers": count, **mean, "total_pss_mb": sum(m["pss_mb"] for m in measured),
                     "load_average": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    table = markdown(rows, shape, args.label)
    print(table)
    if args.out:
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
