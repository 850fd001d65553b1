"""The conda environments of the workflow (envs/*.yaml): conda-forge, pinned, and complete for the package."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
ENV_FILES = sorted(ENVS.glob("*.yaml"))
GPU_RULES = {"train_base", "invert", "reconstruct", "sample_base", "discover", "sample_discovered", "finetune",
             "novelty_sweep", "jacobian", "jacobian_in_domain", "discover_prior", "sample_control", "seeds", "settings"}

# import name (or pip distribution name) -> the conda-forge packages that provide it
CONDA_NAMES = {
    "PIL": {"pillow"},
    "skimage": {"scikit-image"},
    "yaml": {"pyyaml"},
    "torch": {"pytorch"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
}
SPEC = re.compile(r"(?P<name>[A-Za-z0-9][\w.-]*)\s*(?P<op>==?)(?P<version>[0-9][0-9.*]*)(?:\s*=?\s*(?P<build>\S+))?")


def parse_spec(spec: str) -> dict | None:
    """'pytorch =2.13 =cuda*' -> name, op, version, build; None for an unpinned spec ('numpy', 'numpy >=2')."""
    match = SPEC.fullmatch(spec.strip())
    return match.groupdict() if match else None


def is_pinned(spec: str) -> bool:
    """`name =X.Y` or stricter (`=X.Y.Z`, `==X.Y.Z`, with or without a build); cuda-version pins its major."""
    parsed = parse_spec(spec)
    if parsed is None:
        return False
    if parsed["name"] == "cuda-version":
        return re.fullmatch(r"\d+(\.\*|\.\d+)*", parsed["version"]) is not None
    return re.fullmatch(r"\d+\.\d+(\.\d+)*", parsed["version"]) is not None


def load(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and isinstance(env.get("dependencies"), list), path
    return env


def conda_specs(env: dict) -> dict[str, str]:
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    names = [s.split()[0].split("=")[0] for s in specs]
    assert len(set(names)) == len(names), f"a package is listed twice: {names}"
    return dict(zip(names, specs))


def third_party_imports(*folders: Path) -> set[str]:
    """Top-level modules imported anywhere (functions included) in the .py files of the folders."""
    modules = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in {"discoverydiff", "snakemake"}}


def provided(module: str, packages: set[str]) -> bool:
    return bool(CONDA_NAMES.get(module, {module.lower()}) & packages)


def test_cpu_and_gpu_envs_exist():
    assert {"cpu.yaml", "gpu.yaml"} <= {p.name for p in ENV_FILES}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_is_conda_forge_and_pinned(path):
    env = load(path)
    assert env["channels"] == ["conda-forge", "nodefaults"], path
    specs = conda_specs(env)
    assert specs["python"].split()[1] == "=3.11"
    unpinned = [s for s in specs.values() if not is_pinned(s)]
    assert not unpinned, f"{path.name}: pin a version (`name =X.Y` or stricter): {unpinned}"
    assert "snakemake" not in specs  # the workflow's own Snakemake runs the jobs
    # No `pip: [-e ..]`: Snakemake hands conda a copy of the file in its conda prefix, so the path would
    # point there. The post-deploy script installs the package from the checkout, without letting pip
    # pull its dependencies (a CUDA torch) from PyPI.
    assert not [d for d in env["dependencies"] if isinstance(d, dict)], path.name
    deploy = path.with_suffix(".post-deploy.sh")
    assert deploy.exists(), f"{deploy.name} installs the package into the environment"
    assert re.search(r"^python -m pip install .*--no-deps.* -e \"\$root\"$", deploy.read_text(), flags=re.M)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_provides_every_import_of_the_package(path):
    packages = set(conda_specs(load(path)))
    modules = third_party_imports(REPO / "discoverydiff", REPO / "workflow_scripts")
    assert {"torch", "numpy", "h5py", "PIL"} <= modules  # the scan sees the imports
    missing = sorted(m for m in modules if not provided(m, packages))
    assert not missing, f"{path.name} lacks the packages for: {missing}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_has_every_runtime_dependency_at_the_constrained_version(path):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = conda_specs(load(path))
    packages = set(specs)
    constraints = dict(line.lower().split("==") for line in (REPO / "requirements/constraints.txt").read_text().split()
                       if "==" in line)
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        if name == "snakemake":
            continue
        conda = CONDA_NAMES.get(name, {name}) & packages
        assert conda, f"{path.name} lacks {name}"
        version = parse_spec(specs[conda.pop()])["version"]
        pinned = constraints.get(name)
        if pinned:  # the pin admits the version the tests run with
            assert pinned == version or pinned.startswith(version + "."), (path.name, name, version, pinned)


def test_gpu_env_pins_a_cuda_pytorch_and_cpu_env_has_no_cuda():
    gpu = conda_specs(load(ENVS / "gpu.yaml"))
    torch = parse_spec(gpu["pytorch"])
    assert torch["build"] and torch["build"].startswith("cuda"), gpu["pytorch"]
    assert re.fullmatch(r"12(\.\*|\.\d+)?", parse_spec(gpu["cuda-version"])["version"]), gpu["cuda-version"]
    cpu = conda_specs(load(ENVS / "cpu.yaml"))
    assert parse_spec(cpu["pytorch"])["build"].startswith("cpu"), cpu["pytorch"]
    assert not [name for name in cpu if "cuda" in name or "nvidia" in name]


@pytest.mark.parametrize("spec,pinned", [
    ("numpy =2.4", True), ("numpy =2.4.6", True), ("numpy ==2.4.6", True), ("pytorch =2.13 =cuda*", True),
    ("cuda-version =12.*", True), ("numpy", False), ("numpy >=2.4", False), ("numpy =2", False),
    ("numpy =2.*", False), ("pytorch =* =cuda*", False),
])
def test_pin_check_rejects_loose_specs(spec, pinned):
    assert is_pinned(spec) is pinned


@pytest.mark.parametrize("module,packages,ok", [
    ("PIL", {"pillow"}, True), ("skimage", {"scikit-image"}, True), ("matplotlib", {"matplotlib-base"}, True),
    ("torch", {"numpy"}, False), ("statmorph", {"photutils"}, False),
])
def test_import_mapping(module, packages, ok):
    assert provided(module, packages) is ok


def rule_bodies(text: str) -> dict[str, str]:
    blocks = re.split(r"^rule (\w+):", text, flags=re.M)
    return dict(zip(blocks[1::2], blocks[2::2]))


def test_rules_use_the_gpu_env_exactly_when_they_ask_for_a_gpu():
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        rules.update(rule_bodies(path.read_text()))
    envs = {name: m.group(1) for name, body in rules.items()
            if (m := re.search(r"conda:\s*\n\s*\"\.\./envs/([\w.-]+)\"", body))}
    for env in set(envs.values()):
        assert (ENVS / env).exists(), env
    for name, env in envs.items():
        gpu = re.search(r"^\s*gpu\s*=\s*1", rules[name], flags=re.M) is not None
        assert env == ("gpu.yaml" if gpu else "cpu.yaml"), (name, env)
        assert gpu == (name in GPU_RULES), name


@pytest.mark.parametrize("env", ["cpu.yaml", "gpu.yaml"])
def test_env_header_names_exactly_the_rules_that_use_it(env):
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        rules.update(rule_bodies(path.read_text()))
    using = {name for name, body in rules.items() if f'"../envs/{env}"' in body}
    header = []
    for line in (ENVS / env).read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    named = {word for word in re.findall(r"\w+", " ".join(header)) if word in rules}
    assert using and named == using, (sorted(named - using), sorted(using - named))


@pytest.mark.parametrize("env", ["cpu", "gpu"])
def test_post_deploy_installs_the_checkout_it_is_run_from(env, tmp_path):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python").write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\n')  # records what pip would do
    (stub / "python").chmod(0o755)
    script = ENVS / f"{env}.post-deploy.sh"
    base = {"PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(script)], cwd=REPO, env=base, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "args").read_text().split() == [
        "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(REPO)]
    elsewhere = subprocess.run(["bash", str(script)], cwd=tmp_path, env=base, capture_output=True, text=True)
    assert elsewhere.returncode == 1 and "DISCOVERYDIFF_ROOT" in elsewhere.stderr
    named = subprocess.run(["bash", str(script)], cwd=tmp_path, env=dict(base, DISCOVERYDIFF_ROOT=str(REPO)),
                           capture_output=True, text=True)
    assert named.returncode == 0, named.stderr
