"""The loaded model: one ``predict`` interface for every flavor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.models.manifest import Manifest
from mlark.models.signature import Signature


class Model:
    """A model loaded from a model folder.

    ``predict(data)`` takes a pandas DataFrame, a numpy array, a dict (of columns, or one record)
    or a list, checks it against the signature, and returns what the framework returns, as numpy
    arrays or pandas objects. ``raw`` is the framework's own object (an estimator, a
    ``torch.nn.Module``, an ``onnxruntime.InferenceSession``, ...).
    """

    def __init__(self, path: Path, manifest: Manifest, predictor: Any) -> None:
        self.path = path
        self.manifest = manifest
        self._predictor = predictor

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def raw(self) -> Any:
        return self._predictor.raw

    @property
    def compiled(self) -> Any:
        """A framework-free form of the model the flavor offers for fast prediction, or None (the
        sklearn flavor: the node arrays of a forest's trees, ``sklearn_trees.TreeArrays``)."""
        return getattr(self._predictor, "compiled", None)

    @property
    def run_id(self) -> str | None:
        return self.manifest.run_id

    @property
    def metadata(self) -> dict[str, Any]:
        return self.manifest.metadata

    @property
    def input_example(self) -> Any:
        """The stored input example (DataFrame, ndarray or dict of arrays), or None."""
        if self.manifest.input_example is None:
            return None
        from mlark.models.example import decode_example
        from mlark.models.files import ModelFiles

        return decode_example(ModelFiles(self.path, self.manifest).read_bytes(self.manifest.input_example))

    def prepare(self, data: Any) -> Any:
        """``data`` as ``predict`` hands it to the framework: normalised and checked against the signature."""
        from mlark.models.enforce import enforce

        return enforce(None if self.signature is None else self.signature.inputs, data)

    def predict(self, data: Any) -> Any:
        return self._predictor.predict(self.prepare(data))

    def __repr__(self) -> str:
        sig = "no signature" if self.signature is None else str(self.signature)
        framework = f"{self.manifest.framework} {self.manifest.framework_version}"
        return f"<mlark Model {self.flavor} ({framework}) {sig} at {self.path}>"
