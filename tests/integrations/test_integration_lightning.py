"""mlark.lightning.MlarkLogger with a real lightning Trainer on a tiny model, on CPU."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import mlark  # noqa: E402
from mlark.lightning import MlarkLogger  # noqa: E402
from mlark.ops.repo import Repo  # noqa: E402
from mlark.tracking.capture import Capture  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

QUIET = replace(Capture.none(), host=True)

pytestmark = [
    # lightning 2.6 uses torch.utils._pytree.LeafSpec, which torch 2.13 deprecates: not ours to fix.
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`"),
]


@pytest.fixture(autouse=True)
def _quiet_lightning() -> Iterator[None]:
    names = ("lightning", "lightning.pytorch", "lightning.fabric")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    yield
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", author="alice")
    yield r
    r.close()


class TinyRegressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8, optimizer: dict[str, Any] | None = None,
                 fail_at_step: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.fail_at_step is not None and self.global_step == self.hparams.fail_at_step:
            raise RuntimeError("diverged")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), on_epoch=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y), on_epoch=True)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loader(seed: int, n: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8)


def _trainer(logger: Any, tmp_path: Path, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "log_every_n_steps": 1,
        "default_root_dir": tmp_path,
    }
    return pl.Trainer(logger=logger, **{**options, **kw})


def test_trainer_fit_records_params_and_metric_history(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlark.ops.runs import Run

    flushes: list[str] = []
    monkeypatch.setattr(Run, "flush", lambda self: flushes.append(self.id))
    torch.manual_seed(0)
    logger = MlarkLogger(project="lit", name="tiny", repo=repo, capture=QUIET, tags={"team": "ml"})
    model = TinyRegressor(lr=0.05, hidden=8, optimizer={"name": "sgd", "momentum": 0.0})
    trainer = _trainer(logger, tmp_path)
    trainer.fit(model, _loader(1), _loader(2))
    # Lightning calls logger.save() after every log_metrics: that must not write synchronously.
    assert flushes == []
    monkeypatch.undo()

    assert logger.name == "lit"
    run = mlark.get_run(logger.version, repo=repo)
    assert run.name == "tiny" and run.project == "lit"
    assert run.status == "finished"
    assert run.tags == {"mlark.logger": "lightning", "team": "ml"}
    assert run.params["lr"] == 0.05
    assert run.params["hidden"] == 8
    assert run.params["optimizer/name"] == "sgd"
    assert run.params["fail_at_step"] is None

    train = run.history("train_loss")
    assert list(train.steps) == list(range(8))  # 32 samples / 8 per batch x 2 epochs, at the global step
    assert all(math.isfinite(v) for v in train.values)
    val = run.history("val_loss")
    assert len(val.values) == 2  # once per epoch
    assert run.metrics["val_loss"] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert "epoch" in run.metrics  # Lightning logs the epoch with every metric

    # Testing afterwards with the same logger resumes the run and ends it again.
    trainer.test(model, _loader(3), verbose=False)
    run = mlark.get_run(logger.version, repo=repo)
    assert run.status == "finished"
    assert len(run.history("test_loss").values) == 1
    assert len(mlark.runs("lit", repo=repo)) == 1


def test_a_failed_fit_fails_the_run(repo: Repo, tmp_path: Path) -> None:
    logger = MlarkLogger(project="lit", repo=repo, capture=QUIET)
    with pytest.raises(RuntimeError, match="diverged"):
        _trainer(logger, tmp_path, max_epochs=1).fit(TinyRegressor(fail_at_step=2), _loader(1))
    run = mlark.get_run(logger.version, repo=repo)
    assert run.status == "failed"
    assert list(run.history("train_loss").steps) == [0, 1]  # what was logged before the failure is kept


def test_logger_inside_an_active_run_logs_there_and_leaves_it_open(repo: Repo, tmp_path: Path) -> None:
    with mlark.start_run("outer", name="sweep", repo=repo, capture=QUIET) as run:
        logger = MlarkLogger(repo=repo)
        _trainer(logger, tmp_path, max_epochs=1, limit_val_batches=0).fit(TinyRegressor(hidden=4), _loader(1))
        assert logger.experiment is run and logger.version == run.id
        assert run.is_live
        assert len(run.history("train_loss").values) == 4
        run.log({"after": 1.0})
    stored = mlark.get_run(run.id, repo=repo)
    assert stored.status == "finished"
    assert stored.params["hidden"] == 4
    assert mlark.runs("default", repo=repo) == []
