"""Diagnosis: is the contrastive method's failure on screw due to its prototype definition?

Trains the paper's contrastive classifier exactly as the grid does (config ``paper``), then
scores the same queries three ways: the paper's prototype (embedding of the pixel-wise mean
of the class's support residual maps), the mean of the support embeddings, and the nearest
single support image. Usage (prints one line per shot count)::

    python -m research.diagnose_prototypes SEED SHOTS... [--category screw]

Reads the images from $FSAD_DATA (or --data).
"""

import argparse

import numpy as np
import torch

import fsad.methods.paper as paper
from fsad.config import load_config
from fsad.data import default_data_root, few_shot_split, load_category
from fsad.evaluate import build_task, default_engine_factory, resolve_dataset_root, resolve_textures
from fsad.train import class_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("shots", type=int, nargs="+")
    ap.add_argument("--category", default="screw")
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    args = ap.parse_args()
    cfg = load_config("paper")
    data = default_data_root(args.data)
    if data is None:
        raise SystemExit("set FSAD_DATA or pass --data")
    root = resolve_dataset_root(data, "mvtec_ad")
    cat = load_category(root, "mvtec_ad", args.category)
    engine = default_engine_factory(cat, cfg, args.seed)
    textures = resolve_textures(cfg, root)
    paper_predict = paper.predict_contrastive
    alt: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def predict_both(model, support, y, query, batch_size=64):  # same signature as the paper's
        out = paper_predict(model, support, y, query, batch_size)
        model.eval()
        es = torch.cat([model(support[i : i + 64].float()) for i in range(0, len(support), 64)])
        eq = torch.cat([model(query[i : i + 64].float()) for i in range(0, len(query), 64)])
        protos = torch.stack([es[torch.as_tensor(r)].mean(0) for r in class_rows(y)])
        alt["mean"] = (eq @ torch.nn.functional.normalize(protos, dim=1).T).argmax(1).numpy()
        alt["nearest"] = y[(eq @ es.T).argmax(1).numpy()]  # class of the nearest support image
        return out

    paper.predict_contrastive = predict_both  # training is untouched: only scoring is added
    for n in args.shots:
        split = few_shot_split(cat.test, n)
        task = build_task(cfg, cat, split, args.seed, engine, "contrastive", textures)
        pred = paper.contrastive(task)
        yq = split.query_labels
        print(
            f"{args.category} seed {args.seed} {n}-shot: paper prototype "
            f"{np.mean(pred.labels == yq):.3f}, mean of embeddings {np.mean(alt['mean'] == yq):.3f}, "
            f"nearest support image {np.mean(alt['nearest'] == yq):.3f}; chance "
            f"{split.chance:.3f}, {len(yq)} queries",
            flush=True,
        )


if __name__ == "__main__":
    main()
