"""``a2a-server models``: list the registry's models with their state, or convert one now.

The core CLI dispatches the ``models`` subcommand here (entry point ``skills.inference.cli:main``) with the
remaining arguments. This module only parses them; the work is in ``models`` and ``convert``.
"""

from __future__ import annotations

import argparse
import json
import sys

from skills.inference.backend import ModelLoadError
from skills.inference.convert import convert
from skills.inference.models import ModelState, Registry, RegistryError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a2a-server models",
        description="Models of the inference skill (registry: built-ins + A2A_INFERENCE_MODELS_FILE).",
    )
    sub = parser.add_subparsers(dest="command")
    listing = sub.add_parser("list", help="list models and their state (the default)")
    listing.add_argument("--json", action="store_true", help="one JSON object per model")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    conv = sub.add_parser("convert", help="convert a model for ctransformers now instead of on first use")
    conv.add_argument("id", nargs="?", help="model id (default: the default model)")
    return parser


def _list(registry: Registry, as_json: bool) -> int:
    specs = list(registry)
    if as_json:
        for spec in specs:
            row = {
                "id": spec.id,
                "default": spec.id == registry.default,
                "state": str(spec.state()),
                "model_type": spec.model_type,
                "context_length": spec.context_length,
                "chat_format": spec.chat_format,
                "price_prompt_token": str(spec.price_prompt_token),
                "price_completion_token": str(spec.price_completion_token),
                "source": spec.where(),
                "file": str(spec.load_path() or ""),
            }
            print(json.dumps(row))
        return 0
    table: list[tuple[str, ...]] = [("ID", "STATE", "TYPE", "CONTEXT", "CHAT", "PRICE PROMPT:COMPLETION", "FILE")]
    for spec in specs:
        table.append(
            (
                ("*" if spec.id == registry.default else "") + spec.id,
                str(spec.state()),
                spec.model_type,
                str(spec.context_length),
                spec.chat_format,
                f"{spec.price_prompt_token}:{spec.price_completion_token}",
                str(spec.load_path() or spec.where()),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1])
    print("(* default model; 'needs conversion' is done on first use or by `a2a-server models convert`)")
    return 0


def _convert(registry: Registry, model_id: str | None) -> int:
    spec = registry.get(model_id)
    if spec is None:
        print(f"unknown model {model_id!r}; known: {', '.join(registry.ids())}", file=sys.stderr)
        return 2
    state = spec.state()
    if state is not ModelState.NEEDS_CONVERSION:
        print(f"{spec.id}: {state}" + ("" if state is ModelState.AVAILABLE else f" ({spec.where()})"))
        return 0 if state is ModelState.AVAILABLE else 1
    source, target = spec.source(), spec.load_path()
    assert source is not None and target is not None
    convert(source, target)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        registry = Registry.from_env()
        if args.command == "convert":
            return _convert(registry, args.id)
        return _list(registry, args.json)
    except (RegistryError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
