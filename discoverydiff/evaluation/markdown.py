"""The results as Markdown, written from the result tables alone: no number is typed by hand.

For every dataset folder (``results/{dataset}``) it reads ``comparison.csv`` (every set against the
test maps), ``two_sample.csv``, ``compute.csv``, and, when they exist, ``seeds_summary.csv`` and
``settings.yaml``, and writes:

- the splits and what each set is;
- per statistic, each set's value, and its difference to the discovered set with the 95% interval
  and the permutation p-value, marked where the interval excludes zero;
- a sentence per comparison that counts the statistics on which the discovered set is closer, and
  those on which it is farther, beyond the interval (so a control that wins is said to win);
- the two-sample tests, the seeds summary and what each set cost.

Run it on a results folder (rule ``results_markdown`` does, for the configured datasets)::

    python -m discoverydiff.evaluation.markdown results/radiation results/galaxies --out results/results.md
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

#: Table order and wording of the sets.
SET_LABELS = {
    "discovered": "discovered",
    "discovered_unscreened": "discovered, unscreened",
    "discovered_prior": "paper's prior scheme",
    "baseline_samples": "fine-tuned",
    "baseline_selected": "fine-tuned, selected",
    "base_samples": "base model",
    "fewshot": "few-shot maps",
    "validation": "validation maps",
}
#: What each set is, for the text.
SET_MEANING = {
    "discovered_unscreened": "a random draw of discovery's candidates before screening",
    "discovered_prior": "the paper's prior scheme with the same screening budget",
    "baseline_samples": "the base model fine-tuned on the few-shot maps, sampled once per kept sample",
    "baseline_selected": "the fine-tuned model given the discovered set's selection (as many draws per kept "
                         "sample as discovery screens)",
    "base_samples": "the frozen base model's own samples",
    "fewshot": "the few-shot maps themselves (the ceiling for a method that learns only from them)",
    "validation": "the validation maps (another unseen draw of the domain)",
}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0)}f}"


def _p(value) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _verdict(row) -> str:
    """▲: the discovered set is closer, the interval of the difference above zero; ▼: farther, below zero."""
    lo, hi = row["delta_low"], row["delta_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return "▲" if lo > 0 else ("▼" if hi < 0 else "")


def _bars(by, statistics) -> list[str]:
    """The discovered set against the fine-tuned baseline (``baseline_samples``) on the bars of a claim:
    not farther beyond the interval on any domain statistic, closer on most, k-NN recall at least the
    baseline's minus 0.2, near-copy share at most 1/16, W1 of d1/d2 to the test maps at most 0.15."""
    from ..discovery.search import FLOORS as BARS  # the floors the settings search keeps, held against the test maps
    from ..stats.resampling import NOT_DOMAIN

    def value(set_name, stat):
        if (set_name, stat) not in by.index:
            return float("nan")
        return float(by.loc[(set_name, stat), "value"])

    def mark(ok) -> str:
        return "yes" if ok else "**no**"

    lines = []
    base = "baseline_samples"
    domain = [s for s in statistics if s not in NOT_DOMAIN and (base, s) in by.index
              and math.isfinite(by.loc[(base, s), "delta_vs_discovered"])]
    if domain:
        farther = [s for s in domain if _verdict(by.loc[(base, s)]) == "▼"]
        closer = [s for s in domain if by.loc[(base, s), "delta_vs_discovered"] > 0]
        lines += ["**Bars against the fine-tuned baseline**", "", "| bar | measured | met |", "|---|---|---|",
                  f"| not farther beyond the interval on any domain statistic | farther on {len(farther)} of "
                  f"{len(domain)}{': ' + ', '.join(farther) if farther else ''} | {mark(not farther)} |",
                  f"| closer on most domain statistics (point estimates) | {len(closer)} of {len(domain)} | "
                  f"{mark(2 * len(closer) > len(domain))} |"]
    recall, base_recall = value("discovered", "recall"), value(base, "recall")
    if math.isfinite(recall) and math.isfinite(base_recall):
        lines.append(f"| k-NN recall against the test maps at least the fine-tuned set's minus "
                     f"{BARS['recall_margin']:g} | {_fmt(recall)} vs {_fmt(base_recall)} | "
                     f"{mark(recall >= base_recall - BARS['recall_margin'] - 1e-12)} |")
    coverage, base_coverage = value("discovered", "coverage"), value(base, "coverage")
    if math.isfinite(coverage) and math.isfinite(base_coverage):
        lines.append(f"| (context) k-NN coverage, which outlying samples cannot inflate | {_fmt(coverage)} vs "
                     f"{_fmt(base_coverage)} | |")
    copies = value("discovered", "near_copy_share")
    if math.isfinite(copies):
        lines.append(f"| near-copy share at most 1/16 | {_fmt(copies)} | "
                     f"{mark(copies <= BARS['max_near_copy_share'] + 1e-12)} |")
    novelty = value("discovered", "novelty_w1")
    if math.isfinite(novelty):
        lines.append(f"| W1 of d1/d2 to the test maps' at most {BARS['max_novelty_w1']:g} | {_fmt(novelty)} | "
                     f"{mark(novelty <= BARS['max_novelty_w1'])} |")
    return lines + [""] if lines else []


def dataset_section(results_dir, title: str | None = None) -> str:
    """The Markdown of one dataset's results folder."""
    import pandas as pd
    import yaml

    root = Path(results_dir)
    comparison = pd.read_csv(root / "comparison.csv")
    comparison = comparison[comparison["reference"] == "test"]
    sets = [s for s in SET_LABELS if s in set(comparison["set"])]
    statistics = list(dict.fromkeys(comparison["statistic"]))
    by = comparison.set_index(["set", "statistic"])
    name = title or root.name
    lines = [f"## {name}", ""]
    tensors = root / "tensors.h5"
    if tensors.exists():
        from ..store import read_attrs

        attrs = read_attrs(tensors)
        lines += [f"{attrs.get('n_fewshot', '?')} few-shot maps (all any method sees), "
                  f"{attrs.get('n_validation', '?')} validation maps (settings), {attrs.get('n_test', '?')} test "
                  "maps (every distance below is to them); every generated set has "
                  f"{int(comparison[comparison['set'] == 'discovered']['n_set'].max())} maps.", ""]
    record = {}
    if (root / "settings.yaml").exists():
        record = yaml.safe_load((root / "settings.yaml").read_text()) or {}
    meaning = dict(SET_MEANING)
    if (record.get("chosen") or {}).get("screen.oversample") == 1:  # nothing screened: the controls coincide
        meaning["discovered_unscreened"] += " (the chosen setting screens nothing: the discovered maps themselves)"
        meaning["baseline_selected"] = ("the fine-tuned model under the discovered set's selection, which for the "
                                        "chosen setting keeps every draw: the fine-tuned set itself")
    lines += ["| set | what it is |", "|---|---|"]
    lines += [f"| {SET_LABELS[s]} | {meaning.get(s, 'the discovered samples')} |" for s in sets]
    lines += ["", "**Values against the test maps** (distances; signed differences are set minus test maps; "
              "95% interval of the discovered set's value in brackets)", ""]
    lines += ["| statistic | " + " | ".join(SET_LABELS[s] for s in sets) + " |",
              "|---|" + "---|" * len(sets)]
    for stat in statistics:
        cells = []
        for s in sets:
            if (s, stat) not in by.index:
                cells.append("")
                continue
            row = by.loc[(s, stat)]
            text = _fmt(row["value"])
            if s == "discovered" and math.isfinite(row["ci_low"]):
                text += f" [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
            cells.append(text)
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    others = [s for s in sets if s != "discovered"]
    lines += ["", "**Differences to the discovered set**: the set's distance to the test maps minus the "
              "discovered set's (> 0: the discovered set is closer), 95% interval (both sides resampled), "
              "permutation p-value; ▲ the interval is above zero, ▼ below.", ""]
    lines += ["| statistic | " + " | ".join(f"vs {SET_LABELS[s]}" for s in others) + " |",
              "|---|" + "---|" * len(others)]
    counts = {s: [0, 0, 0] for s in others}
    for stat in statistics:
        cells = []
        for s in others:
            if (s, stat) not in by.index or not math.isfinite(by.loc[(s, stat), "delta_vs_discovered"]):
                cells.append("")
                continue
            row = by.loc[(s, stat)]
            mark = _verdict(row)
            counts[s][0] += 1
            counts[s][1] += mark == "▲"
            counts[s][2] += mark == "▼"
            cells.append(f"{mark}{_fmt(row['delta_vs_discovered'], 2)} [{_fmt(row['delta_low'], 2)}, "
                         f"{_fmt(row['delta_high'], 2)}] p {_p(row['p_vs_discovered'])}")
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    lines += [""]
    for s in others:
        n, closer, farther = counts[s]
        if n:
            lines.append(f"- Against {SET_LABELS[s]}: the discovered set is closer beyond the interval on "
                         f"{closer} of {n} statistics, farther beyond it on {farther}, and the rest cannot be "
                         "told apart at this size.")
    lines += [""]
    lines += _bars(by, statistics)
    two_sample = root / "two_sample.csv"
    if two_sample.exists():
        table = pd.read_csv(two_sample)
        if len(table):
            lines += ["**Two-sample tests** against the test maps (energy distance in the summary-feature space, "
                      "permutation p-value: small means the set differs from the test maps)", "",
                      "| set | energy distance | p |", "|---|---|---|"]
            lines += [f"| {SET_LABELS.get(r['set'], r['set'])} | {_fmt(r['value'])} | {_p(r['p_value'])} |"
                      for _, r in table.iterrows()]
            lines += [""]
    seeds = root / "seeds_summary.csv"
    if seeds.exists():
        table = pd.read_csv(seeds)
        if len(table):
            n_seeds = int(table["n_seeds"].max())
            lines += [f"**Over {n_seeds} seeds** (discovery, baselines and controls drawn again; splits fixed): "
                      "share of seeds in which the discovered set is closer, and the mean difference ± its spread",
                      "", "| statistic | " + " | ".join(f"vs {SET_LABELS.get(s, s)}" for s in others
                                                        if s in set(table["set"])) + " |",
                      "|---|" + "---|" * sum(s in set(table["set"]) for s in others)]
            seed_by = table.set_index(["set", "statistic"])
            for stat in dict.fromkeys(table["statistic"]):
                cells = []
                for s in others:
                    if s not in set(table["set"]):
                        continue
                    if (s, stat) not in seed_by.index:
                        cells.append("")
                        continue
                    r = seed_by.loc[(s, stat)]
                    cells.append(f"{r['share_discovered_closer']:.0%} ({_fmt(r['delta_mean'], 2)} ± "
                                 f"{_fmt(r['delta_std'], 2)})")
                lines.append(f"| {stat} | " + " | ".join(cells) + " |")
            lines += [""]
    compute = root / "compute.csv"
    if compute.exists():
        table = pd.read_csv(compute)
        lines += ["**What each set cost**", "", "| set | UNet forwards | fine-tuning steps | seconds | note |",
                  "|---|---|---|---|---|"]
        lines += [f"| {SET_LABELS.get(r['set'], r['set'])} | {int(r['unet_forwards'])} | {int(r['training_steps'])} "
                  f"| {_fmt(r['seconds'])} | {'' if pd.isna(r['note']) else r['note']} |"
                  for _, r in table.iterrows()]
        lines += [""]
    if record:
        lines += ["**Settings chosen on the validation maps** (`settings.yaml`)", "", "```yaml",
                  yaml.safe_dump(record.get("chosen", record), sort_keys=True).strip(), "```", ""]
        cost = record.get("cost") or {}
        if record.get("reason"):
            lines += [f"Why: {record['reason']}. "
                      + (f"The search ran {cost.get('settings')} settings, {cost.get('unet_forwards')} UNet forwards, "
                         f"{_fmt(cost.get('seconds'))} s." if cost else ""), ""]
        lines += _acceptance_line(root / "discovered_latents.h5")
        rows = [r for r in record.get("settings", []) if "statistics" in r]
        if rows:
            lines += ["| setting (against the validation maps) | objective | recall | near-copy share | novelty W1 "
                      "| meets the floors |", "|---|---|---|---|---|---|"]

            def with_error(r, stat):
                error = (r.get("standard_errors") or {}).get(stat)
                value = _fmt(r["statistics"].get(stat))
                return f"{value} ± {_fmt(error, 2)}" if error is not None and math.isfinite(error) else value

            for r in rows:
                knobs = ", ".join(f"{k} {v}" for k, v in sorted(r["setting"].items())) or "(defaults)"
                lines.append(f"| {knobs} | {_fmt(r['objective'])} | {with_error(r, 'recall')} | "
                             f"{_fmt(r['statistics'].get('near_copy_share'))} | {with_error(r, 'novelty_w1')} | "
                             f"{'yes' if r.get('feasible') else 'no'} |")
            floors = record.get("floors") or {}
            if "recall_floor" in floors:
                lines += ["", f"Recall floor: the few-shot maps' own recall of the validation maps minus "
                              f"{_fmt(floors.get('recall_margin'))} = {_fmt(floors['recall_floor'])}."
                              + (f" A floor is missed when: {floors['missed_when']}." if floors.get("missed_when")
                                 else "")]
            lines += [""]
    return "\n".join(lines)


def _acceptance_line(path) -> list[str]:
    """The discovered set's acceptance windows and the share of the few-shot targets inside them, when recorded."""
    from ..store import read_attrs

    if not Path(path).exists():
        return []
    acceptance = read_attrs(path).get("acceptance") or {}
    share, tolerance = acceptance.get("target_pass_share"), acceptance.get("tolerance")
    if share is None or not tolerance:
        return []
    values = sorted(set(tolerance.values())) if isinstance(tolerance, dict) else [tolerance]
    spreads = _fmt(values[0], 2) if len(values) == 1 else ", ".join(f"{k} {_fmt(v, 2)}" for k, v in tolerance.items())
    return [f"Acceptance windows: {spreads} spreads of the few-shot targets' own values; "
            f"{_fmt(100 * float(share), 0)}% of the targets pass their own windows.", ""]


def results_markdown(results_dirs, titles=None, header: str = "") -> str:
    """The Markdown of several datasets' results folders, each a section."""
    titles = list(titles or [None] * len(results_dirs))
    parts = [header.strip(), ""] if header else []
    for folder, title in zip(results_dirs, titles):
        parts.append(dataset_section(folder, title))
    return "\n".join(parts).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m discoverydiff.evaluation.markdown", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="dataset results folders (results/NAME)")
    ap.add_argument("--title", action="append", help="a section title per folder (default: the folder name)")
    ap.add_argument("--header", default="", help="Markdown put before the sections")
    ap.add_argument("--out", help="write here instead of standard output")
    args = ap.parse_args(argv)
    missing = [f for f in args.results if not (Path(f) / "comparison.csv").exists()]
    if missing:
        print(f"error: no comparison.csv in {', '.join(missing)} (run the workflow first)", file=sys.stderr)
        return 1
    text = results_markdown(args.results, args.title, args.header)
    if args.out:
        from ..store import atomic_path

        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
