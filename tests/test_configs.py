"""The shipped configs: each validates against config/schema.yaml, the paper's flags build the paper's models, the
paper configs run the paper's discovery scheme, and the templates a user copies dry-run once filled in."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dryrun import copy_repository, fill_placeholders
from snakemake.utils import update_config, validate

from discoverydiff.adm import adm_from_flags, count_parameters
from discoverydiff.diffusion import timestep_sequence
from discoverydiff.discovery import screen_oversample

CONFIG = Path(__file__).resolve().parents[1] / "config"
SCHEMA = str(CONFIG / "schema.yaml")
MODELS = sorted((CONFIG / "paper").glob("model_*.yaml"))
DATA = sorted((CONFIG / "paper").glob("data_*.yaml"))
VARIANT = CONFIG / "paper" / "variant_pairs_screening.yaml"
TEMPLATES = sorted((CONFIG / "templates").glob("*.yaml"))


def merged(*paths: Path) -> dict:
    """What Snakemake builds from ``--configfile A B``: B merged into A, recursively."""
    config: dict = {}
    for path in paths:
        update_config(config, yaml.safe_load(path.read_text()))
    return config


def test_there_are_paper_configs_for_both_model_families_and_both_domains():
    assert {p.stem for p in MODELS} >= {"model_adm_afhqdog", "model_ddpm_celebahq"}
    assert {p.stem for p in DATA} >= {"data_galaxyzoo", "data_radiation"}


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
@pytest.mark.parametrize("data", DATA, ids=lambda p: p.stem)
def test_paper_config_pairs_validate_with_the_paper_settings(model, data):
    config = merged(model, data)
    validate(config, schema=SCHEMA)  # fills the defaults in place
    assert config["model"]["resolution"] == 256
    assert (config["diffusion"]["t0"], config["diffusion"]["n_inv_step"], config["diffusion"]["eta"]) == (900, 80, 0.0)
    assert timestep_sequence(900, 80)[:4] == [0, 11, 22, 34]  # docs/method.md, section 2
    assert (config["discovery"]["n_slerp"], config["discovery"]["n_ref"]) == (20, 10)
    # the paper's scheme: slerp towards draws of the targets' Gaussian at every weight, no screening
    assert config["discovery"]["scheme"] == "prior" and config["discovery"]["min_weight"] is None
    assert screen_oversample(config["discovery"]) == 1
    assert all("discovery" not in dataset for dataset in config["datasets"].values())  # no dataset overrides it
    assert all(dataset["kind"] in ("field", "galaxy") for dataset in config["datasets"].values())
    # every path a user must supply is marked, in the file where it is set
    for path in (model, data):
        marked = [line for line in path.read_text().splitlines() if "FILL IN" in line]
        assert marked and all("/path/to/" in line for line in marked)


def test_adm_paper_flags_build_the_afhqdog_p2_architecture():
    flags = yaml.safe_load((CONFIG / "paper" / "model_adm_afhqdog.yaml").read_text())["model"]["adm_flags"]
    # the parameter count of OpenAI's create_model with the same flags (tests/test_adm.py)
    assert count_parameters(adm_from_flags(flags)) == 93_563_910


def test_demo_configs_validate():
    validate(merged(CONFIG / "config.yaml"), schema=SCHEMA)
    for stage in ("demo_base_model_stage1.yaml", "demo_base_model.yaml"):
        both = merged(CONFIG / "config.yaml", CONFIG / stage)
        validate(both, schema=SCHEMA)
        assert both["model"]["path"] is None and both["model"]["train"]["steps"] > 0
    # what the shipped checkpoint says it was trained with is what the stage-2 config asks for
    shipped = json.loads((CONFIG.parent / "resources/models/demo_unet32/training.json").read_text())["training"]
    asked = merged(CONFIG / "config.yaml", CONFIG / "demo_base_model.yaml")["model"]["train"]
    assert {k: shipped[k] for k in asked if k != "init_from"} == {k: v for k, v in asked.items() if k != "init_from"}


def test_a_typo_in_a_paper_config_is_rejected():
    config = merged(MODELS[0], DATA[0])
    bad = copy.deepcopy(config)
    bad["diffusion"]["n_inv_steps"] = 80
    with pytest.raises(Exception, match="n_inv_steps"):
        validate(bad, schema=SCHEMA)


def test_a_dataset_named_like_the_shared_model_folder_is_rejected():
    config = merged(CONFIG / "config.yaml")
    config["datasets"]["base_model"] = copy.deepcopy(config["datasets"]["radiation"])
    with pytest.raises(Exception, match="base_model"):
        validate(config, schema=SCHEMA)
    config["datasets"]["base_models"] = config["datasets"].pop("base_model")  # only that one name
    validate(config, schema=SCHEMA)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_the_variant_runs_this_projects_method_on_the_papers_settings(model):
    paper = merged(model, DATA[0])
    variant = merged(model, DATA[0], VARIANT)
    validate(paper, schema=SCHEMA)
    validate(variant, schema=SCHEMA)
    assert variant["discovery"]["scheme"] == "pairs" and screen_oversample(variant["discovery"]) > 1
    changed = {k for k in variant["discovery"] if variant["discovery"][k] != paper["discovery"].get(k)}
    assert changed == {"scheme", "screen", "search"}
    # the paper's own scheme is never searched; the variant searches a finer grid than the demo's
    assert paper["discovery"]["search"]["enabled"] is False and variant["discovery"]["search"]["enabled"] is True
    grid = variant["discovery"]["search"]["grid"]
    assert len(grid["min_weight"]) >= 3 and variant["discovery"]["min_weight"] is None
    same = [key for key in paper if key != "discovery"]
    assert {k: variant[k] for k in same} == {k: paper[k] for k in same} and set(variant) == set(paper)


def test_config_readme_states_the_demo_settings():
    row = next(line for line in (CONFIG / "README.md").read_text().splitlines() if line.startswith("| `config.yaml`"))
    demo = yaml.safe_load((CONFIG / "config.yaml").read_text())["diffusion"]
    assert re.search(r"t0 = (\d+)", row).group(1) == str(demo["t0"])
    assert re.search(r"(\d+) DDIM steps", row).group(1) == str(demo["n_inv_step"])


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_template_validates_and_marks_what_to_fill_in(template):
    config = merged(template)
    validate(config, schema=SCHEMA)
    (name, dataset), = config["datasets"].items()
    assert dataset["kind"] == template.stem
    lines = [line for line in template.read_text().splitlines() if not line.lstrip().startswith("#")]
    marked = [line for line in lines if "FILL IN" in line]
    assert marked and all("/path/to/" in line for line in marked)
    assert "config/schema.yaml" in template.read_text()


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake dry run: rule -> jobs."""
    table = dry_run_output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_template_dry_runs_once_its_placeholders_point_at_files(template, tmp_path):
    copy = copy_repository(tmp_path / "repo")
    mine = copy / f"my_{template.stem}.yaml"
    shutil.copy(template, mine)
    made = fill_placeholders(mine, tmp_path / "inputs")
    assert made and all(path.exists() for path in made)
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "8", "--configfile", mine.name], cwd=copy,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = job_counts(run.stdout)
    assert jobs["ingest"] == 1 and jobs["discover"] == 1 and "train_base" not in jobs  # the given checkpoint
    if template.stem == "galaxy":
        # the few-shot, validation and test maps, the discovered, fine-tuned and base sets and three controls
        assert jobs["morphology"] == 9 and jobs["figure"] == 7
    else:
        assert "morphology" not in jobs and jobs["figure"] == 8  # power spectra and PDFs instead
    assert not (copy / "results").exists()  # a dry run writes no result
