"""Geometric discovery at scale: candidates of 3x256x256 latents scored against 1,000 references.

Run from the repository root, e.g.::

    .venv/bin/python benchmarks/bench_discovery.py --candidates 10000 --n-target 1000 --n-id 1000
    .venv/bin/python benchmarks/bench_discovery.py --candidates 2000 --n-target 200 --n-id 200 --plain

Synthetic latents stand in for inverted ones (target ~ N(m, 0.8^2 I), ID ~ N(0, I), as in the
tests): the cost of discovery depends on their number and size only. ``discover`` runs with
a tolerance so wide that no candidate is accepted early, so exactly ``--candidates`` candidates
are generated (``--scheme``: ``pairs``, the workflow's default, between two targets at the
slerp points in [0.4, 0.6]; ``prior``, a target towards a prior draw at 20 points) and scored on the three
criteria, each against ``n_ref`` = 10 random references per candidate out of the target and
ID sets. Reported: wall time (the one-off set-up, Gram matrices of the references, and the
candidate loop), candidates per second and the peak resident memory of the process.

``--plain`` also times the straightforward way on the same candidates: form every candidate
in D dimensions (``slerp``) and score it with full (candidates x references) products
(``criterion_values``); both give the same criteria (max |difference| printed).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import time

import torch

from discoverydiff.discovery import (
    GaussianPrior,
    References,
    SlerpCandidates,
    TooFewAccepted,
    _criteria_from_dots,
    criterion_values,
    discover,
    slerp,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--n-target", type=int, default=1000)
    ap.add_argument("--n-id", type=int, default=1000)
    ap.add_argument("--shape", type=int, nargs=3, default=[3, 256, 256])
    ap.add_argument("--batch-candidates", type=int, default=1024, help="discovery.batch_candidates")
    ap.add_argument("--scheme", choices=["pairs", "prior"], default="pairs", help="discovery.scheme")
    ap.add_argument("--plain", action="store_true", help="also time the form-every-candidate way")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    args.candidates = -(-args.candidates // 20) * 20  # whole pairs: 20 slerp points each
    g = torch.Generator().manual_seed(0)
    shape = tuple(args.shape)
    mean = 0.6 * torch.randn(shape, generator=g)
    target = mean + 0.8 * torch.randn((args.n_target, *shape), generator=g)
    ids = torch.randn((args.n_id, *shape), generator=g)
    rss_inputs = _peak_rss_gib()

    start = time.perf_counter()
    refs = References.build(target, ids)
    setup = time.perf_counter() - start
    del refs
    start = time.perf_counter()
    try:
        # wide windows on two criteria and an impossible one on the third: nothing is accepted
        discover(target, ids, n_accept=1, seed=0, tolerance={"dist_to_id": 1e-12, "angle_origin": 1e3,
                                                               "angle_pairs": 1e3},
                 max_candidates=args.candidates, batch_candidates=args.batch_candidates, scheme=args.scheme)
        raise SystemExit("a candidate was accepted; the benchmark needs a window nothing passes")
    except TooFewAccepted as exc:
        assert f"from {args.candidates} candidates" in str(exc), exc
    total = time.perf_counter() - start
    row = {"scheme": args.scheme, "candidates": args.candidates, "n_target": args.n_target, "n_id": args.n_id,
           "shape": shape,
           "setup_s": setup, "discover_s": total, "candidates_per_s": args.candidates / total,
           "peak_rss_gib": _peak_rss_gib(), "inputs_rss_gib": rss_inputs}
    print(f"{args.candidates} candidates of {'x'.join(map(str, shape))} against {args.n_target} target + "
          f"{args.n_id} ID latents; threads {torch.get_num_threads()}")
    latent_gib = (args.n_target + args.n_id) * math.prod(shape) * 4 / 2**30
    row["latents_gib"] = latent_gib
    print(f"discover: {total:.1f} s in all, {row['candidates_per_s']:.0f} candidates/s (the reference Gram "
          f"matrices alone, timed apart: {setup:.1f} s); peak RSS {row['peak_rss_gib']:.2f} GiB, inputs alone "
          f"{rss_inputs:.2f} GiB, the latents themselves {latent_gib:.2f} GiB (float32)")

    if args.plain:
        refs = References.build(target, ids)
        n_pairs = max(1, args.batch_candidates // 20)
        weights = torch.arange(1, 21, dtype=torch.float64) / 21
        src = torch.randint(args.n_target, (n_pairs,), generator=g)
        draws = GaussianPrior.fit(refs.t).sample(n_pairs, g)
        start = time.perf_counter()
        cand = SlerpCandidates.score(refs, src, draws, weights)
        fast = _criteria_from_dots(cand.pt, cand.pi, cand.pp, refs, 10, torch.Generator().manual_seed(1))
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        formed = slerp(refs.t[src[cand.pair]], draws[cand.pair], cand.w)
        plain = criterion_values(formed, refs, None, 10, torch.Generator().manual_seed(1))
        plain_s = time.perf_counter() - start
        diff = float((fast - plain).abs().max())
        row.update({"batch": len(cand.pair), "batch_fast_s": fast_s, "batch_plain_s": plain_s,
                    "max_abs_diff": diff})
        print(f"one batch of {len(cand.pair)} candidates: pair dot products {fast_s:.2f} s, "
              f"formed candidates with full products {plain_s:.2f} s: {plain_s / fast_s:.1f}x; "
              f"max |criteria difference| {diff:.1e}")
    if args.json:
        meta = {"machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                "args": vars(args)}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "row": row}, fh, indent=2)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


if __name__ == "__main__":
    main()
