"""Did a refactor change the report's figures? Render one study's report with two checkouts and diff what a reader sees.

A refactor of the report (9f8d125 put report/frontier.py on the search's domain model) should
change no figure beyond the disagreements it decided. Tests check pieces; this checks the whole
page on a real study: the report of ``--study`` is rendered once with this checkout's ``src`` and
once with ``--before-src`` (each in a subprocess, ``PYTHONPATH=<src> python -m paretodistill.cli
report STUDY --out TMP.html``), and from each page it takes every table row (its cells' text),
every visible sentence holding a number, and every plot's data (x/y of each trace's points; the
values of each parallel-coordinates axis). It prints what only one side shows and a verdict.

    git worktree add --detach ../wt-before 9f8d125^
    python benchmarks/report_figures_diff.py --study runs/search-cpu --before-src ../wt-before/src [--keep DIR]

Exit status: 0 same figures (lines may differ in wording), 1 a number differs, 2 a side could not render the study.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "div", "summary", "caption", "dt", "dd", "header", "section", "table", "br"}
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")  # "generated 2026-12-01 10:15" differs by design
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?%?(?!\w)")  # not the 8 of "int8"
PLOT = re.compile(r'Plotly\.newPlot\(\s*"plot-\d+-([^"]*)",\s*')


def render(src: Path, study: Path, out: Path) -> str | None:
    """Writes the report with the package in ``src``; None, else the reason it failed (one line)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    found = subprocess.run([sys.executable, "-c", "import paretodistill; print(paretodistill.__file__)"], env=env,
                           cwd=out.parent, capture_output=True, text=True).stdout.strip()
    if not found or Path(found).resolve().parent != (src / "paretodistill").resolve():  # else an installed copy answers
        return f"paretodistill is not imported from {src} (got {found or 'nothing'})"
    cmd = [sys.executable, "-m", "paretodistill.cli", "report", "--study", str(study), "--out", str(out)]
    done = subprocess.run(cmd, env=env, cwd=out.parent, capture_output=True, text=True)
    if done.returncode == 0 and out.is_file():
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"[:400]


class Figures(HTMLParser):
    """Table rows and number-bearing sentences of a report page, tagged with their section."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items: list[str] = []
        self.section, self.skip, self.text, self.row, self.cell = "top", 0, [], None, None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "section":
            self.section = dict(attrs).get("id") or self.section
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag in BLOCKS and self.cell is None:
            self.flush()

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.items.append(f"[{self.section}] row: " + " | ".join(self.row))
            self.row = None
        elif tag in BLOCKS and self.cell is None:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            (self.cell if self.cell is not None else self.text).append(data)

    def flush(self):
        text = " ".join("".join(self.text).split())
        self.text = []
        if re.search(r"\d", text):
            self.items.append(f"[{self.section}] text: {text}")


def values(v) -> list:
    """A plotly array as a list: plain JSON, or plotly's base64 ``{"dtype", "bdata"}`` encoding."""
    if isinstance(v, dict) and "bdata" in v:
        v = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return [f"{x:.6g}" if isinstance(x, float) else str(x) for x in (v if isinstance(v, list) else [])]


def plot_items(page: str) -> list[str]:
    """One item per plotted point (x, y) and one per parallel-coordinates axis, named by plot and trace."""
    items = []
    for match in PLOT.finditer(page):
        traces, _ = json.JSONDecoder().raw_decode(page, match.end())
        for trace in traces:
            label = f"[plot {match.group(1)}] {trace.get('type', 'scatter')} {trace.get('name') or ''}".rstrip()
            for dim in trace.get("dimensions") or []:
                items.append(f"{label} axis {dim.get('label')}: {' '.join(values(dim.get('values')))}")
            xs, ys = values(trace.get("x")), values(trace.get("y"))
            items += [f"{label}: ({x}, {y})" for x, y in zip(xs, ys)]
            if not (xs and ys) and (xs or ys):
                items.append(f"{label}: {' '.join(xs or ys)}")
    return items


def figures(page: str) -> Counter:
    parser = Figures()
    parser.feed(TIME.sub("<time>", page))
    parser.close()
    return Counter(parser.items + plot_items(page))


def show(title: str, items: Counter, limit: int) -> None:
    lines = sorted(items.elements())
    print(f"--- {title}: {len(lines)}" + "".join(f"\n  {line[:300]}" for line in lines[:limit]))
    if len(lines) > limit:
        print(f"  ... {len(lines) - limit} more (--limit)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, type=Path, help="the study directory to report on")
    parser.add_argument("--before-src", required=True, type=Path, help="the src folder of the other checkout")
    parser.add_argument("--after-src", type=Path, default=HERE_SRC, help="default: this checkout's src")
    parser.add_argument("--keep", type=Path, help="also keep the two pages here (before.html, after.html)")
    parser.add_argument("--limit", type=int, default=60, help="lines shown per side (default 60)")
    args = parser.parse_args(argv)
    pages = {}
    with tempfile.TemporaryDirectory(prefix="report-diff-") as tmp:
        for side, src in (("before", args.before_src), ("after", args.after_src)):
            out = Path(tmp) / f"{side}.html"
            error = render(src.resolve(), args.study.resolve(), out)
            if error:
                print(f"VERDICT: cannot compare: the {side} code ({src}) cannot render {args.study}: {error}")
                return 2
            pages[side] = out.read_text(encoding="utf-8")
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / out.name).write_text(pages[side], encoding="utf-8")
    return compare(pages["before"], pages["after"], args.limit)


def compare(before_page: str, after_page: str, limit: int = 60) -> int:
    """Prints the figures only one page shows and the verdict; returns the exit status."""
    before, after = figures(before_page), figures(after_page)
    only_before, only_after = before - after, after - before
    print(f"{sum(before.values())} figures before, {sum(after.values())} after, {sum((before & after).values())} shared")
    show("only before", only_before, limit)
    show("only after", only_after, limit)
    if not (only_before or only_after):
        print("VERDICT: same figures: every table row, number-bearing sentence and plotted point matches")
        return 0
    # A line whose words changed but whose numbers did not is wording; compare each line's numbers, in order.
    numbers = [Counter(t for t in (tuple(NUMBER.findall(line.split(": ", 1)[-1])) for line in side.elements()) if t)
               for side in (only_before, only_after)]
    if numbers[0] == numbers[1]:
        print(f"VERDICT: same figures: {len(list(only_before.elements()) + list(only_after.elements()))} line(s) differ "
              "in wording only (each line's numbers are the same on both sides)")
        return 0
    print(f"VERDICT: figures differ: numbers only before {sorted((numbers[0] - numbers[1]).elements())[:10]}, "
          f"only after {sorted((numbers[1] - numbers[0]).elements())[:10]}")
    return 1

if __name__ == "__main__":
    sys.exit(main())
