"""mlark.transformers.MlarkCallback with a real transformers Trainer on a tiny, randomly initialised BERT.

Nothing is downloaded: the model is built from a config in the test, the data are random token ids.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

# No network for the Hugging Face libraries, whatever the test does.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import mlark  # noqa: E402
from mlark.ops.repo import Repo  # noqa: E402
from mlark.tracking.capture import Capture  # noqa: E402
from mlark.transformers import MlarkCallback  # noqa: E402

QUIET = replace(Capture.none(), host=True)
VOCAB = 100


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", author="alice")
    yield r
    r.close()


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, VOCAB, (n, 12), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def _tiny_bert() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=32, num_labels=2,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config)


def _args(tmp_path: Path, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 5,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 7,
    }
    return transformers.TrainingArguments(**{**options, **kw})


def test_trainer_records_args_config_and_losses(repo: Repo, tmp_path: Path) -> None:
    callback = MlarkCallback(project="nlp", repo=repo, capture=QUIET, tags={"model": "tiny-bert"})
    trainer = transformers.Trainer(
        model=_tiny_bert(), args=_args(tmp_path, run_name="tiny-bert-lr3"), train_dataset=RandomTokens(24, seed=1),
        callbacks=[callback],
    )  # fmt: skip
    trainer.train()

    (run,) = mlark.runs("nlp", repo=repo)
    assert run.id == callback.run_id
    assert run.name == "tiny-bert-lr3"
    assert run.status == "finished"
    assert run.tags == {"mlark.callback": "transformers", "model": "tiny-bert"}
    assert run.params["learning_rate"] == 1e-3
    assert run.params["max_steps"] == 5
    assert run.params["per_device_train_batch_size"] == 4
    assert run.params["report_to"] == []
    assert run.params["model.hidden_size"] == 32
    assert run.params["model.num_hidden_layers"] == 2
    assert run.params["model.vocab_size"] == VOCAB
    assert run.params["hub_token"] in (None, "<HUB_TOKEN>")  # masked by TrainingArguments.to_dict()

    loss = run.history("loss")
    assert list(loss.steps) == [1, 2, 3, 4, 5]  # logging_steps=1, at state.global_step
    assert list(run.history("learning_rate").steps) == [1, 2, 3, 4, 5]
    assert run.metrics["train_loss"] > 0
    assert run.history("train_runtime").steps.tolist() == [5]
    assert run.summary["global_step"] == 5

    # Evaluating afterwards logs into the same run, which is finished again at once.
    metrics = trainer.evaluate(eval_dataset=RandomTokens(16, seed=2))
    run = mlark.get_run(run.id, repo=repo)
    assert run.status == "finished"
    assert run.metrics["eval_loss"] == pytest.approx(metrics["eval_loss"])
    assert run.history("eval_loss").steps.tolist() == [5]
    assert len(mlark.runs("nlp", repo=repo)) == 1


def test_callback_inside_an_active_run_logs_there_and_leaves_it_open(repo: Repo, tmp_path: Path) -> None:
    with mlark.start_run("nlp", name="outer", repo=repo, capture=QUIET) as run:
        trainer = transformers.Trainer(
            model=_tiny_bert(), args=_args(tmp_path, max_steps=2), train_dataset=RandomTokens(8, seed=1),
            callbacks=[MlarkCallback(repo=repo)],
        )  # fmt: skip
        trainer.train()
        assert run.is_live
        assert run.params["max_steps"] == 2
        assert run.history("loss").steps.tolist() == [1, 2]
    assert mlark.get_run(run.id, repo=repo).status == "finished"
    assert mlark.runs("default", repo=repo) == []
