"""The config summary a checkpoint carries, and the words for how two summaries differ."""

from __future__ import annotations

from typing import Any, Mapping

from .options import SampleOptions

__all__ = ["config_summary", "summary_differences"]


def config_summary(options: SampleOptions, manifest_fingerprint: str, num_samples: int) -> dict[str, Any]:
    """The small JSON dict a checkpoint carries to prove it belongs to this config and manifest."""
    return {**options.fingerprint_fields(), "manifest": manifest_fingerprint, "num_samples": num_samples}


def summary_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human lines naming each field that differs between two config summaries."""
    names = sorted(set(saved) | set(current))
    return [f"`{name}`: checkpoint has {saved.get(name)!r}, this loader has {current.get(name)!r}"
            for name in names if saved.get(name) != current.get(name)]
