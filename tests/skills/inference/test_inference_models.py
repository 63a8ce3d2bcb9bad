"""The model registry, `a2a-server models`, and load errors that say which file, what type and what to do."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from a2a_server.skill import SkillContext
from skills.inference import InferenceSkill
from skills.inference.backend import ModelLoadError, load_llm
from skills.inference.cli import main
from skills.inference.convert import cache_dir, converted_name
from skills.inference.models import BUILTIN_MODELS, ModelSpec, ModelState, Registry, RegistryError

SMOLLM2 = BUILTIN_MODELS[0]


def write_registry(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(body)
    return path


def test_toml_registry_adds_models_with_paths_relative_to_the_file(tmp_path: Path, tiny_model_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tiny.gguf").write_bytes(tiny_model_path.read_bytes())
    file = write_registry(
        tmp_path,
        """
default = "tiny"
[models.tiny]
path = "m/tiny.gguf"
context_length = 512
threads = 1
price_prompt_token = 3
price_completion_token = 1000000000000000000
[models.gone]
path = "/nowhere/gone.gguf"
""",
    )
    registry = Registry.from_file(file)
    assert registry.default == "tiny"
    assert registry.ids() == ["smollm2-135m", "tiny", "gone"]
    tiny = registry.get("tiny")
    assert tiny is not None and tiny.path == tmp_path / "m" / "tiny.gguf" and tiny.cost(2, 5) == 6 + 5 * 10**18
    assert tiny.state() is ModelState.AVAILABLE
    gone = registry.get("gone")
    assert gone is not None and gone.state() is ModelState.MISSING


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[models.x]\npath = 'a.gguf'\ncontex_length = 5\n", "unknown key 'contex_length'"),
        ("[models.x]\npath = 'a.gguf'\ncontext_length = '5'\n", "context_length must be of type int"),
        ("[models.x]\nmodel_type = 'llama'\n", "either path, or package and resource"),
        ("[models.x]\npath = 'a.gguf'\nprice_prompt_token = 0.5\n", "price_prompt_token must be of type int"),
        ("[models.x]\npath = 'a.gguf'\nprice_completion_token = -1\n", "price_completion_token must be an integer"),
        ("[models.x]\npath = 'a.gguf'\nprice_per_token = 0.1\n", "use price_prompt_token and price_completion_token"),
        ("[models.x]\npath = 'a.gguf'\nchat_format = 'alpaca'\n", "chat_format must be one of chatml, plain"),
        ("default = 'y'\n[models.x]\npath = 'a.gguf'\n", "default model 'y' is not in the registry"),
        ("[models\n", "cannot read model registry"),
    ],
)
def test_registry_errors_name_the_file_and_the_entry(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        Registry.from_file(write_registry(tmp_path, body))


def test_the_shipped_model_is_located_without_importing_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = SMOLLM2.source()
    assert source is not None and source.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and source.is_file()
    assert SMOLLM2.load_path() == tmp_path / "a2a-server" / "models" / converted_name(source)
    assert cache_dir() == tmp_path / "a2a-server" / "models"
    assert SMOLLM2.state() is ModelState.NEEDS_CONVERSION


def test_models_cli_lists_each_model_with_its_state(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    file = write_registry(tmp_path, f"[models.tiny]\npath = '{tiny_model_path}'\n[models.gone]\npath = 'gone.gguf'\n")
    monkeypatch.setenv("A2A_INFERENCE_MODELS_FILE", str(file))
    assert main([]) == 0
    table = capsys.readouterr().out
    assert "*smollm2-135m  needs conversion" in table
    assert "tiny" in table and "available" in table and "missing" in table
    assert main(["list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"]: r["state"] for r in rows} == {
        "smollm2-135m": "needs conversion",
        "tiny": "available",
        "gone": "missing",
    }
    assert main(["convert", "gone"]) == 1
    assert main(["convert", "nope"]) == 2
    monkeypatch.setenv("A2A_INFERENCE_MODELS_FILE", str(tmp_path / "absent.toml"))
    assert main([]) == 1
    assert "cannot read model registry" in capsys.readouterr().err


def test_a_missing_file_fails_with_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"gone\.gguf does not exist \(expected a llama GGUF/GGML file\)"):
        load_llm(tmp_path / "gone.gguf", "llama", context_length=64, threads=1, batch_size=8)


def test_a_file_that_is_not_a_model_says_so(tmp_path: Path) -> None:
    page = tmp_path / "model.gguf"
    page.write_text("<html>404</html>")
    with pytest.raises(ModelLoadError, match="neither GGUF nor old-format GGML"):
        load_llm(page, "llama", context_length=64, threads=1, batch_size=8)


def test_the_unconverted_smollm2_gets_an_explanation_not_a_bare_failed_to_create() -> None:
    source = SMOLLM2.source()
    assert source is not None
    with pytest.raises(ModelLoadError) as info:
        load_llm(source, "llama", context_length=64, threads=1, batch_size=8)
    message = str(info.value)
    assert str(source) in message and "model_type 'llama'" in message
    assert "lacks tokenizer.ggml.scores and a separate output.weight" in message
    assert "a2a-server models convert" in message


@pytest.mark.parametrize("keep", [4000, 600_000])
def test_a_truncated_gguf_is_refused_before_ctransformers_aborts_the_process(
    tmp_path: Path, tiny_model_path: Path, keep: int
) -> None:
    """Bug: ctransformers' llama.cpp aborted the test process ("Fatal Python error: Aborted") on the first 4,000
    bytes of a valid GGUF. Fix: walk the GGUF header first and refuse a file whose tensors do not fit in it."""
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model_path.read_bytes()[:keep])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf is (not a valid GGUF file|truncated).*again"):
        load_llm(cut, "llama", context_length=64, threads=1, batch_size=8)


async def test_a_skill_whose_model_is_missing_is_not_ready_and_fails_tasks_clearly(
    tmp_path: Path, ctx_factory: Callable[..., SkillContext]
) -> None:
    registry = Registry([ModelSpec(id="gone", path=tmp_path / "gone.gguf")], "gone")
    skill = InferenceSkill(registry)
    assert skill.ready() == "the inference skill has not been started"
    await skill.start()
    with pytest.raises(ModelLoadError):
        await skill.wait_ready()
    reason = skill.ready()
    assert reason is not None and "model gone failed to load" in reason and "gone.gguf does not exist" in reason
    with pytest.raises(ModelLoadError, match="does not exist"):
        async for _ in skill.run(ctx_factory()):
            pass
    await skill.close()


def test_the_skill_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_INFERENCE_POOL", "2")
    monkeypatch.setenv("A2A_INFERENCE_QUEUE", "3")
    monkeypatch.delenv("A2A_INFERENCE_THREADS", raising=False)
    monkeypatch.setenv("A2A_INFERENCE_TIMEOUT", "30")
    monkeypatch.setenv("A2A_INFERENCE_FLUSH_MS", "0")
    skill = InferenceSkill()
    assert (skill.pool_size, skill.queue_size, skill.registry.default) == (2, 3, "smollm2-135m")
    assert skill.threads is None and skill.max_threads >= 1  # picked per evaluation from 1..cores / pool
    assert (skill.timeout_s, skill.pacing.flush_s) == (30.0, 0.0)
    monkeypatch.setenv("A2A_INFERENCE_THREADS", "auto")
    assert InferenceSkill().threads is None
    monkeypatch.setenv("A2A_INFERENCE_THREADS", "1")
    assert InferenceSkill().threads == 1
    monkeypatch.setenv("A2A_INFERENCE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="A2A_INFERENCE_TIMEOUT must be a number"):
        InferenceSkill()
    monkeypatch.delenv("A2A_INFERENCE_TIMEOUT")
    monkeypatch.setenv("A2A_INFERENCE_POOL", "zero")
    with pytest.raises(ValueError, match="A2A_INFERENCE_POOL must be an integer >= 1"):
        InferenceSkill()
    monkeypatch.setenv("A2A_INFERENCE_POOL", "1")
    monkeypatch.setenv("A2A_INFERENCE_MODEL", "llama-70b")
    with pytest.raises(RegistryError, match="default model 'llama-70b' is not in the registry"):
        InferenceSkill()


def test_the_card_describes_the_skill_and_its_parameters() -> None:
    card = InferenceSkill().card()
    assert card.id == "inference" and "streaming" in card.tags
    for name in ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed", "stop", "model"):
        assert name in card.description
    assert any("capital of France" in e for e in card.examples)


async def test_models_lists_the_registry_with_loaded_state(make_skill: Callable[..., InferenceSkill]) -> None:
    skill = make_skill()
    [before] = skill.models()
    assert (before.id, before.state, before.context_length) == ("tiny", "available", 512)
    await skill.wait_ready()
    assert [m.state for m in skill.models()] == ["loaded"]
    await skill.close()


def test_prices_come_from_the_environment_as_integers_per_model() -> None:
    registry = Registry.from_env({"A2A_INFERENCE_PRICES": "1:20"})
    spec = registry.default_spec
    assert (spec.price_prompt_token, spec.price_completion_token) == (1, 20)
    assert spec.cost(10, 3) == 70
    named = Registry.from_env({"A2A_INFERENCE_PRICES": "smollm2-135m=0:7"}).default_spec
    assert (named.price_prompt_token, named.price_completion_token) == (0, 7)
    assert Registry.from_env({}).default_spec.cost(100, 100) == 0  # unpriced by default


@pytest.mark.parametrize(
    ("raw", "message"),
    [("1.5:2", "must be model=prompt:completion"), ("nope=1:2", "unknown model 'nope'"), ("3", "prompt:completion"),
     ("-1:2", "must be model=prompt:completion"), (f"1:{10**31}", "at most 10^30")],
)  # fmt: skip
def test_bad_prices_in_the_environment_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(RegistryError, match=re.escape(message)):
        Registry.from_env({"A2A_INFERENCE_PRICES": raw})
