"""TextStream: UTF-8 characters split across tokens, and stop sequences split across tokens."""

from __future__ import annotations

import itertools
import random

from skills.inference.textstream import TextStream


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def run(pieces: list[bytes], stop: tuple[str, ...] = ()) -> tuple[list[str], TextStream]:
    stream = TextStream(stop)
    out = [stream.feed(p) for p in pieces]
    out.append(stream.flush())
    return out, stream


def test_multibyte_characters_split_across_tokens_are_held_until_complete() -> None:
    data = "é日🙂".encode()  # 2 + 3 + 4 bytes
    out, _ = run([bytes([b]) for b in data])
    assert "".join(out) == "é日🙂"
    assert "\ufffd" not in "".join(out)
    assert out[0] == "" and out[1] == "é"  # the first byte alone is not a character yet
    assert out[2:4] == ["", ""] and out[4] == "日"


def test_any_split_of_any_bytes_gives_exactly_the_whole_decoding() -> None:
    rng = random.Random(7)
    samples = ["héllo wörld 日本語 🙂".encode(), bytes(rng.randrange(256) for _ in range(200))]
    for data in samples:
        for _ in range(200):
            cuts = rng.sample(range(1, len(data)), k=rng.randrange(0, 20))
            out, _ = run(chunks(data, cuts))
            assert "".join(out) == data.decode("utf-8", errors="replace")


def test_an_incomplete_character_at_the_end_becomes_one_replacement_character() -> None:
    out, _ = run([b"ok", "日".encode()[:2]])
    assert out == ["ok", "", "\ufffd"]


def test_stop_sequence_split_across_tokens_is_never_sent() -> None:
    out, stream = run([b"Paris.", b"\nUs", b"er:", b" more"], stop=("\nUser:",))
    assert "".join(out) == "Paris."
    assert stream.stopped
    assert out[2] == "" and out[3] == ""  # nothing after the stop


def test_text_that_only_looks_like_a_stop_prefix_is_released_when_it_diverges() -> None:
    out, stream = run([b"a <", b"b>", b" c"], stop=("<|end|>",))
    assert out[0] == "a " and out[1] == "<b>"
    assert "".join(out) == "a <b> c"
    assert not stream.stopped


def test_the_earliest_of_several_stop_sequences_wins() -> None:
    out, _ = run([b"one two three"], stop=("three", "two"))
    assert out[0] == "one "
