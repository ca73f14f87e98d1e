"""``RandomTimelapseDatamodule``: the guide's datamodule, on the resumable graph (``[lightning]`` extra).

Drop-in for cyto-dl configs: point ``_target_`` at ``timelapse_pipes.lightning.RandomTimelapseDatamodule``.
Its train loader's state rides in Lightning checkpoints, so ``Trainer.fit(ckpt_path=...)`` resumes
mid-epoch exactly, and its epoch follows the trainer's epoch.

Lightning fetches one batch ahead of the training step, so a loader's own state at checkpoint
time would count a batch the model never saw. The datamodule therefore records the loader state
after each batch and reports the state of the last batch that reached the model
(``on_before_batch_transfer``).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator, Mapping

import lightning.pytorch as pl

from ..config.manifest import DICT_META_KEY
from ..graph.loader import TimelapseLoader, build_loader

__all__ = ["RandomTimelapseDatamodule", "TrainerSyncedLoader"]

SPLITS = ("train", "val", "test")


class TrainerSyncedLoader:
    """Wraps a :class:`TimelapseLoader`: follows the trainer's epoch and reports consumed state."""

    def __init__(self, loader: TimelapseLoader, datamodule: "RandomTimelapseDatamodule") -> None:
        self.loader = loader
        self.datamodule = datamodule
        self._fetched: deque[dict[str, Any]] = deque()
        self._consumed: dict[str, Any] | None = None
        self._restored = False

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        trainer = self.datamodule._trainer_or_none()
        if trainer is not None and not self._restored:
            self.loader.set_epoch(trainer.current_epoch)
        self._restored = False
        self._fetched.clear()
        self._consumed = self.loader.state_dict()
        for batch in self.loader:
            self._fetched.append(self.loader.state_dict())
            yield batch

    def mark_consumed(self) -> None:
        """Called when a fetched batch reaches the model."""
        if self._fetched:
            self._consumed = self._fetched.popleft()

    def state_dict(self) -> dict[str, Any]:
        return dict(self._consumed) if self._consumed is not None else self.loader.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.loader.load_state_dict(state)
        self._restored = True


class RandomTimelapseDatamodule(pl.LightningDataModule):
    """The guide's datamodule. Every option of ``build_loader`` (its option objects or cyto-dl's flat
    keywords: ``split_column``, ``num_timepoints``, ``seed``, ...) is accepted, with the library's defaults."""

    def __init__(
        self,
        path: Any,
        transforms: Mapping[str, Any] | Any = None,
        num_workers: int = 0,
        batch_size: int = 1,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        **loader_options: Any,
    ) -> None:
        super().__init__()
        self.path = path
        self.persistent_workers = persistent_workers  # workers live per epoch in the graph; kept for configs
        self.options: dict[str, Any] = dict(transforms=transforms, num_workers=num_workers, batch_size=batch_size,
                                            pin_memory=pin_memory, **loader_options)
        self._loaders: dict[str, TrainerSyncedLoader] = {}

    def _trainer_or_none(self) -> Any:
        return getattr(self, "trainer", None)

    def _loader(self, split: str) -> TrainerSyncedLoader:
        if split not in self._loaders:
            self._loaders[split] = TrainerSyncedLoader(build_loader(self.path, split=split, **self.options), self)
        return self._loaders[split]

    def has_split(self, split: str) -> bool:
        """Whether the manifest has rows for ``split``."""
        if isinstance(self.path, Mapping) and DICT_META_KEY not in self.path:
            return split in self.path
        try:
            self._loader(split)
        except Exception:
            return False
        return True

    def train_dataloader(self) -> TrainerSyncedLoader:
        return self._loader("train")

    def val_dataloader(self) -> Any:
        return self._loader("val") if self.has_split("val") else []

    def test_dataloader(self) -> Any:
        return self._loader("test") if self.has_split("test") else []

    def teardown(self, stage: str) -> None:
        """Stop every loader's workers and close its open files when fit, validate or test ends."""
        for synced in self._loaders.values():
            synced.loader.close()

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self._trainer_or_none()
        if trainer is not None and trainer.training and "train" in self._loaders:
            self._loaders["train"].mark_consumed()
        return batch
