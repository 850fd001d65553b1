"""The report's captions (report/*.rst) render as Snakemake renders them, for the demo's and the paper's
configs: every figure has its own caption, and the workflow description tells the discovery that ran."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from docutils.core import publish_parts
from jinja2 import Environment, StrictUndefined
from snakemake.utils import update_config, validate

from discoverydiff.plots import FIGURES_BY_KIND, FIGURES_COMMON

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "report"
SCHEMA = str(REPO / "config" / "schema.yaml")
PAPER = [REPO / "config/paper/model_adm_afhqdog.yaml", REPO / "config/paper/data_galaxyzoo.yaml"]
VARIANT = REPO / "config/paper/variant_pairs_screening.yaml"


def config_of(*paths: Path) -> dict:
    config: dict = {}
    for path in paths:
        update_config(config, yaml.safe_load(path.read_text()))
    validate(config, schema=SCHEMA)  # the defaults, as the workflow sees them
    return config


def render(caption: Path, config: dict, **wildcards) -> str:
    """The caption as Snakemake renders it (jinja2 with trim_blocks and lstrip_blocks), but failing on an
    undefined name, then checked as reStructuredText (docutils stops at a warning)."""
    env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    text = env.from_string(caption.read_text()).render(
        snakemake=SimpleNamespace(config=config, wildcards=SimpleNamespace(**wildcards)))
    publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})
    return text


def figure_names() -> set[str]:
    """Every figure the workflow can draw: rule figure's wildcard constraint and the plotting registry."""
    common = (REPO / "rules" / "common.smk").read_text()
    constrained = set(re.search(r'figure="([\w|]+)"', common).group(1).split("|"))
    registered = set(FIGURES_COMMON) | {name for names in FIGURES_BY_KIND.values() for name in names}
    return constrained | registered


def test_every_caption_a_rule_names_exists():
    named = {m.group(1) for path in (REPO / "rules").glob("*.smk")
             for m in re.finditer(r'caption="\.\./report/([\w.]+)"', path.read_text())}
    assert named and all((REPORT / name).is_file() for name in named), named


def test_every_figure_has_its_own_caption():
    config = config_of(REPO / "config" / "config.yaml")
    titles = {}
    for figure in sorted(figure_names()):
        text = render(REPORT / "figure.rst", config, figure=figure, dataset="radiation")
        title = re.search(r"\*\*(.+?)\*\*", text)
        assert title, f"figure {figure!r} has no caption of its own in report/figure.rst"
        titles[figure] = title.group(1)
    assert len(set(titles.values())) == len(titles) >= 10, titles


@pytest.mark.parametrize("configs", [[REPO / "config" / "config.yaml"], PAPER], ids=["demo", "paper"])
def test_every_caption_renders(configs):
    config = config_of(*configs)
    for caption in sorted(REPORT.glob("*.rst")):
        assert render(caption, config, dataset="radiation", figure="samples").strip(), caption


def test_the_workflow_description_tells_the_discovery_that_ran():
    demo = " ".join(render(REPORT / "workflow.rst", config_of(REPO / "config" / "config.yaml")).split())
    # the demo leaves the screening's knobs to rule settings: the report says so, and names no value
    assert "between pairs of inverted targets" in demo and "set per dataset by rule ``settings``" in demo
    assert "accepted latents per kept sample" not in demo and "t0 = 600, 48 steps" in demo
    paper = " ".join(render(REPORT / "workflow.rst", config_of(*PAPER)).split())
    assert "by the paper's scheme" in paper and "Gaussian fitted to the inverted targets" in paper
    assert "no decoded screening" in paper and "pairs of inverted targets" not in paper
    variant = " ".join(render(REPORT / "workflow.rst", config_of(*PAPER, VARIANT)).split())
    assert "between pairs of inverted targets" in variant and "no decoded screening" not in variant
