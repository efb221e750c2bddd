"""The spoken-script normaliser on a corpus of real engineering-article markdown (tests/corpus/spoken/):
lists, tables, code, links, units, decades, versions, flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skills.content.script import chunk_script, clean_script

CORPUS = Path(__file__).parent / "corpus" / "spoken"
FILES = sorted(CORPUS.glob("*.md"))


def spoken(name: str) -> str:
    return clean_script((CORPUS / name).read_text())


def test_the_corpus_covers_what_articles_contain():
    text = "\n".join(p.read_text() for p in FILES)
    for feature in ("```", "|---", "](http", "]: http", "<div", "<!--", "- **", "1. **", "@", "--", "1990s", "v0."):
        assert feature in text, feature
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_nothing_a_voice_cannot_read_is_left(path):
    script = clean_script(path.read_text())
    assert script
    for bad in ("#", "*", "`", "|", "[", "]", "<", ">", "](", "---", "\\", "✅", "❌", "→", "~"):
        assert bad not in script, (bad, path.name)
    assert not re.search(r"https?:|www\.|@|\w\.(com|org|io|ai|rs|ru)/", script)  # no address is spelled out
    assert not re.search(r"(?<![\w-])--\w", script)  # no command-line flag read as dashes
    assert not re.search(r"\b(1[0-9]|20)\d0 seconds\b", script)  # a decade is not a duration
    assert not re.search(r"(?i)\b(see|at|from|via|visit|to)\s*[.,;:!?]", script)  # no "See for the server."
    assert not re.search(r"\d\. [a-z]", script)  # no stray full stop inside a wrapped list item
    assert not re.search(r"(?<![\w.])\d+\s?(tok/s|GiB|GB|MB|ms|GHz)\b|tok/s", script)  # units are words
    assert all(len(c) <= 600 for c in chunk_script(script, 600))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_normalising_a_script_again_changes_nothing(path):
    script = clean_script(path.read_text())
    assert clean_script(script) == script


def test_code_comments_scripts_and_link_definitions_are_not_read():
    text = " ".join(spoken(p.name) for p in FILES)
    for hidden in ("launch_server", "launch server", "speculative_model", "export", "VLLM_SERVER", "plotly",
                   "Rejection Sampler", "rustrush.ru", "A loose analogy", "sleepmode.png", "figure8"):
        assert hidden not in text, hidden


def test_lists_wrapped_over_lines_are_one_sentence_each():
    script = spoken("gb10-serving-notes.md")
    assert "the box now answers about 1200 requests a day without queueing." in script
    assert "Cold start takes about 4 minutes including CUDA graph capture; a warm swap takes 45 seconds." in script
    rust = spoken("rust-4-years.md")
    assert "4 consecutive years in a row. We opened up" in rust


def test_small_tables_become_sentences_and_big_ones_a_spoken_note():
    summary = spoken("vllm-sleep-mode.md")
    assert "For Level 1: Total Time 112 point 6 seconds, Wake Time (A/B) 0 point 26 seconds" in summary
    assert "Fast Weight Loaders no Every time, Sleep Mode yes Preserved." in summary
    notes = spoken("gb10-serving-notes.md")
    assert "For mem-fraction-static: Before 0 point 9, After 0 point 75." in notes
    assert "The article has a table here, with 9 rows comparing run, batch, ctx" in notes
    assert "190" not in notes  # the big table's cells are not read


def test_links_and_addresses_are_dropped_cleanly():
    notes = spoken("gb10-serving-notes.md")
    assert "See the link in the article for the server." in notes
    assert "Questions go to the address in the article, or open an issue at the link in the article." in notes
    assert "The mirror at example dot org keeps older builds." in notes  # a bare name is said as one
    spec = spoken("vllm-spec-decode.md")
    assert "You can view the session slides here." in spec and "Picture from the link in the article." in spec
    assert "Future updates (paper, RFC) will allow" in spec
    rust = spoken("rust-4-years.md")
    assert "Crates dot io passed a billion downloads and has over 25000 crates available." in rust
    assert "6 new conferences" in rust


def test_numbers_decades_versions_and_flags_read_naturally():
    notes = spoken("gb10-serving-notes.md")
    for phrase in (
        "Back in the nineteen nineties",
        "in the twenty twenties the GB10 gives us 128 gigabytes",
        "sglang version 0 point 5 point 3",
        "from 12 to 15 tokens per second to 35 to 41 tokens per second",
        "Peak power was 240 watts at 2 point 5 gigahertz; idle is under 40 watts.",
        "with the mem fraction static flag set to 0 point 75 and the speculative algorithm flag set to EAGLE3",
        "pass the disable radix cache flag only when debugging. The port flag set to 30000 is set",
        "the twenty tens-era trick",
        "in the nineties literature",
        "for example until version 0 point 6 ships.",
    ):
        assert phrase in notes, phrase
    sleep = spoken("vllm-sleep-mode.md")
    assert "18 to 200 times faster" in sleep and "61 to 88 percent faster" in sleep
    assert "Qwen3-235B-A22B" in sleep  # a model name is not a quantity
    assert "reload weights and reset prefix cache" in sleep


INLINE = st.sampled_from(
    ["word", "**bold**", "*it*", "`code_x`", "[a link](https://x.example/y)", "<https://a.b/c>", "me@x.org",
     "--flag-name", "1990s", "12-15 tok/s", "v1.2.3", "66 GiB", "|", "→", "✅", "#tag", "e.g.", "_", "\\*"]
)
BLOCK = st.one_of(
    st.lists(INLINE, min_size=1, max_size=8).map(" ".join),
    st.lists(INLINE, min_size=1, max_size=4).map(lambda w: "- " + " ".join(w) + "\n  " + " ".join(w)),
    st.lists(INLINE, min_size=1, max_size=3).map(lambda w: "## " + " ".join(w)),
    st.lists(INLINE, min_size=2, max_size=3).map(lambda w: f"| a | b |\n|---|---|\n| {w[0]} | {w[1]} |"),
    st.just("```sh\nrm -rf --no-preserve-root /\n```"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=6).map("\n\n".join))
def test_any_mix_of_markdown_comes_out_as_plain_speech(markdown):
    script = clean_script(markdown)
    assert not re.search(r"[*`|\[\]<>#→✅]|https?:|@|(?<![\w-])--\w|rm -rf|\b1990 seconds", script), script
    assert clean_script(script) == script
