"""Every number the README quotes comes from the recorded demo run.

`docs/demo/` holds the report, tables and results of one run of the README's
first command under `requirements.lock` (see docs/demo/update.py). The
README marks what it quotes from it with HTML comments, invisible when
rendered:

- `<!-- demo-table: NAME.csv -->` before a Markdown table: each of its
  cells is a number of `docs/demo/tables/NAME.csv` (the row found by the
  table's leading label cells, the column by its header; "m ± s" against
  the CSV's "<col> mean" and "<col> sd"), equal at the printed precision.
- `**N of M**<!-- count: NAME.csv "A" OP "B" -->`: a finding stated in
  words; over the CSV's columns (emotions), A OP B holds for N of the M.
  A row is its label cells joined by "/"; "sd:" before it compares SDs.
- `**N of M**<!-- claims: DIR CLAIM VERDICT -->`: in DIR's
  `tables/claims.csv` (DIR: `demo` or `reproduce`, under docs/), N of the M
  rows of claim CLAIM have the verdict VERDICT.
- `**X SE**<!-- margin: METRIC A B -->`: the mean over seeds of the
  per-seed difference A − B of METRIC (averaged over the emotions), in
  standard errors of that mean, from docs/demo/results.json.

So prose and tables cannot drift apart from the run they describe.
"""

import csv
import json
import math
import pathlib
import re
import shlex

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEMO = REPO / "docs" / "demo"

_TABLE_MARK = re.compile(r"<!-- demo-table: (\S+) -->")
_COUNT = re.compile(r"\*\*(\d+) of (\d+)\*\*<!-- count: (.+?) -->")
_MARGIN = re.compile(r"\*\*(-?[\d.]+) SE\*\*<!-- margin: (\S+) (\S+) (\S+) -->")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CLAIM_COUNT = re.compile(
    r"\*\*(\d+) of (\d+)\*\*<!-- claims: (\S+) (\S+) (\S+) -->"
)


def _clean(cell: str) -> str:
    return cell.replace("**", "").replace("*", "").replace("†", "").strip()


def _cells(line: str) -> list[str]:
    return [_clean(c) for c in line.strip().strip("|").split("|")]


def read_csv(name: str) -> tuple[list[str], list[list[str]]]:
    with open(DEMO / "tables" / name, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _labels(header: list[str]) -> int:
    """Number of leading label columns (those without mean/sd pairs)."""
    n = 0
    for h in header:
        if h.endswith((" mean", " sd")):
            break
        n += 1
    return n


def csv_value(name: str, row: str, column: str, stat: str = "mean"):
    """The CSV cell of `row` ('/'-joined labels) and `column`."""
    header, rows = read_csv(name)
    k = _labels(header)
    if k == len(header):  # a plain table (Table 1): no mean/sd pairs
        k = 1
        key = column
    else:
        key = f"{column} {stat}"
    matches = [r for r in rows if "/".join(r[:k]) == row]
    assert len(matches) == 1, (name, row, [r[:k] for r in rows])
    assert key in header, (name, key, header)
    text = matches[0][header.index(key)]
    return float(text) if text else None


def quoted_tables() -> list[tuple[str, list[str], list[list[str]]]]:
    """(csv name, header cells, body rows) of every marked README table."""
    lines = README.read_text("utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _TABLE_MARK.search(line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("|"):
            j += 1
        block = []
        while j < len(lines) and lines[j].startswith("|"):
            block.append(_cells(lines[j]))
            j += 1
        assert len(block) >= 3, f"README.md:{i + 1}: no table after mark"
        out.append((m[1], block[0], block[2:]))
    return out


def _close(printed: str, value: float) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(float(printed) - value) <= 0.5 * 10**-decimals + 1e-9


def test_the_readme_quotes_the_demo_tables():
    tables = quoted_tables()
    assert len(tables) >= 4  # Table 1, two Table 2 blocks, Table 3, ...
    checked = 0
    for name, header, body in tables:
        csv_header, _ = read_csv(name)
        k = max(1, _labels(csv_header))
        if k == len(csv_header):
            k = 1
        for row in body:
            label = "/".join(row[:k])
            for column, cell in zip(header[k:], row[k:], strict=True):
                numbers = _NUMBER.findall(cell)
                assert numbers, (name, label, column, cell)
                mean = csv_value(name, label, column, "mean")
                assert _close(numbers[0], mean), (name, label, column, cell)
                if len(numbers) > 1:
                    sd = csv_value(name, label, column, "sd")
                    assert _close(numbers[1], sd), (name, label, column, cell)
                checked += 1
    assert checked >= 40


def _compare(name: str, a: str, op: str, b: str) -> tuple[int, int]:
    header, _ = read_csv(name)
    columns = [h[: -len(" mean")] for h in header if h.endswith(" mean")]
    stat_a, row_a = ("sd", a[3:]) if a.startswith("sd:") else ("mean", a)
    stat_b, row_b = ("sd", b[3:]) if b.startswith("sd:") else ("mean", b)
    hits = 0
    for c in columns:
        x = csv_value(name, row_a, c, stat_a)
        y = csv_value(name, row_b, c, stat_b)
        hits += bool(x < y) if op == "<" else bool(x > y)
    return hits, len(columns)


def test_findings_in_words_are_counted_from_the_tables():
    text = README.read_text("utf-8")
    found = _COUNT.findall(text)
    assert len(found) >= 4
    for n, m, spec in found:
        name, a, op, b = shlex.split(spec)
        assert op in "<>"
        assert _compare(name, a, op, b) == (int(n), int(m)), spec


def seed_margin(metric: str, a: str, b: str) -> float:
    """t statistic over seeds of the emotion-averaged difference a − b."""
    runs = json.loads((DEMO / "results.json").read_text("utf-8"))["runs"]
    value = {
        (r["variant"], r["emotion"], r["seed"]): r[metric]
        for r in runs
        if r.get("alpha") is None
    }
    seeds = sorted({s for v, _, s in value if v == a})
    emotions = sorted({e for v, e, _ in value if v == a})
    d = np.array(
        [
            np.mean([value[(a, e, s)] - value[(b, e, s)] for e in emotions])
            for s in seeds
        ]
    )
    return float(d.mean() / (d.std(ddof=1) / math.sqrt(d.size)))


def test_seed_margins_are_computed_from_the_results():
    text = README.read_text("utf-8")
    found = _MARGIN.findall(text)
    assert len(found) >= 2
    for printed, metric, a, b in found:
        assert _close(printed, seed_margin(metric, a, b)), (metric, a, b)


def test_the_recorded_report_links_only_files_it_has():
    report = (DEMO / "report.md").read_text("utf-8")
    links = re.findall(r"\]\(((?:tables|figures)/[^)]+)\)", report)
    assert links
    assert [p for p in links if not (DEMO / p).is_file()] == []


@pytest.mark.parametrize(
    "printed,value,ok",
    [("0.30", 0.304, True), ("0.30", 0.306, False), ("85", 85.4, True)],
)
def test_close_is_the_printed_precision(printed, value, ok):
    assert _close(printed, value) is ok


def test_the_alpha_table_is_the_recorded_trace():
    """The README's `<!-- demo-alpha -->` table: mean and SD of Proposed's
    batch-wise α per emotion (and D's mean and CV and corr(α, D), when
    printed), from docs/demo/results.json."""
    lines = README.read_text("utf-8").splitlines()
    start = lines.index("<!-- demo-alpha -->") + 1
    rows = []
    for line in lines[start:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|"):
            rows.append(_cells(line))
    trace = json.loads((DEMO / "results.json").read_text("utf-8"))[
        "alpha_trace"
    ]
    header, body = rows[0], rows[2:]
    assert header[:3] == ["Emotion", "mean α", "SD of α"]
    assert {r[0].lower() for r in body} == set(trace)
    for emotion, mean, sd, *d in body:
        summary = trace[emotion.lower()]
        assert _close(mean, summary["mean"]), emotion
        assert _close(sd, summary["sd"]), emotion
        # Optional columns: D's mean and CV, corr(α, D).
        wanted = (
            summary["distance"]["mean"],
            summary["distance"]["cv"],
            summary["corr_alpha_distance"],
        )
        assert len(d) in (0, 3), header
        for printed, value in zip(d, wanted):
            assert _close(printed, value), (emotion, printed, value)


def test_claim_verdicts_in_words_are_counted_from_claims_csv():
    text = README.read_text("utf-8")
    found = _CLAIM_COUNT.findall(text)
    assert found, "the README quotes no claim verdict"
    for n, m, folder, claim, verdict in found:
        path = REPO / "docs" / folder / "tables" / "claims.csv"
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["claim"] == claim]
        assert len(rows) == int(m), (folder, claim, len(rows))
        got = sum(r["verdict"].startswith(verdict) for r in rows)
        assert got == int(n), (folder, claim, verdict, got)
