"""The ``inference`` skill: a local GGUF/GGML model through ctransformers, streaming every token."""

from __future__ import annotations

from skills.inference.skill import InferenceSkill

__all__ = ["InferenceSkill"]
