"""Train a small NumPy MLP on scikit-learn's digits and track it with mltrail.

Run from this folder: ``python train_digits.py``; then ``mltrail runs ls``.
Logs into the embedded store ``./.mltrail/`` (no server, no configuration). Each run
logs its weights as a model artifact; the best one that clears a quality gate is
registered in the model registry and promoted to production.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mltrail


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


Result = tuple[float, "mltrail.entities.ArtifactVersion", np.ndarray]


def train(lr: float, hidden: int, epochs: int, batch_size: int, seed: int) -> Result:
    config = {
        "model": {"type": "mlp", "hidden": hidden, "activation": "relu"},
        "optimizer": {"name": "sgd", "lr": lr},
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "dataset": "sklearn.digits",
    }
    rng = np.random.default_rng(seed)
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=seed)
    n_in, n_out = x.shape[1], 10
    w1 = rng.normal(0, np.sqrt(2 / n_in), (n_in, hidden))
    b1 = np.zeros(hidden)
    w2 = rng.normal(0, np.sqrt(2 / hidden), (hidden, n_out))
    b2 = np.zeros(n_out)

    def forward(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.maximum(xb @ w1 + b1, 0.0)
        return h, softmax(h @ w2 + b2)

    def evaluate(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
        _, p = forward(xs)
        loss = -np.log(p[np.arange(len(ys)), ys] + 1e-12).mean()
        return float(loss), float((p.argmax(axis=1) == ys).mean())

    with mltrail.init(
        project="digits", config=config, tags=["numpy", "mlp"], job_type="train",
        notes=f"MLP with {hidden} hidden units, SGD lr={lr}",
    ) as run:  # fmt: skip
        step = 0
        best = 0.0
        for epoch in range(epochs):
            order = rng.permutation(len(x_tr))
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                xb, yb = x_tr[idx], y_tr[idx]
                h, p = forward(xb)
                loss = -np.log(p[np.arange(len(yb)), yb] + 1e-12).mean()
                grad = p.copy()
                grad[np.arange(len(yb)), yb] -= 1
                grad /= len(yb)
                gw2, gb2 = h.T @ grad, grad.sum(axis=0)
                gh = grad @ w2.T * (h > 0)
                gw1, gb1 = xb.T @ gh, gh.sum(axis=0)
                for param, g in ((w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2)):
                    param -= lr * g
                run.log({"train/loss": loss, "grad_norm": np.linalg.norm(gw1)}, step=step)
                step += 1
            val_loss, val_acc = evaluate(x_va, y_va)
            _, train_acc = evaluate(x_tr, y_tr)
            best = max(best, val_acc)
            run.log(
                {"val/loss": val_loss, "val/acc": val_acc, "train/acc": train_acc,
                 "epoch": epoch},
                step=step,
            )  # fmt: skip
        run.summary["best_val_acc"] = best
        with tempfile.TemporaryDirectory() as folder:
            np.savez(Path(folder) / "weights.npz", w1=w1, b1=b1, w2=w2, b2=b2)
            model = run.log_artifact(
                folder, name="digits-mlp", type="model",
                metadata={"framework": "numpy", "framework_version": np.__version__},
            )  # fmt: skip
        print(f"run {run.id} ({run.name}): lr={lr} best val acc {best:.3f}")
    return best, model, x_va[:5]


def register_best(results: list[Result]) -> None:
    """Register the best run's model if it clears the gate, and put it in production."""
    client = mltrail.Client()
    _, model, example = max(results, key=lambda r: r[0])
    version = client.register_model(
        model, "digits-mlp", when="max(metrics.val/acc) >= 0.9", input_example=example,
        metadata={"training_dataset": "sklearn load_digits, 80/20 split, seed 0"},
    )  # fmt: skip
    if version is None:
        print("no run cleared the gate: nothing registered")
        return
    client.promote(version, "staging")
    client.promote(version, "production", reason="best validation accuracy")
    print(f"registered digits-mlp@{version.version} ({version.label}) -> production")


if __name__ == "__main__":
    results = [train(lr=lr, hidden=64, epochs=15, batch_size=32, seed=0) for lr in (0.05, 0.3)]
    register_best(results)
