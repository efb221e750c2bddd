"""Article -> spoken script: the model's prompt, a markdown-free clean-up and TTS-sized chunks.

The clean-up (`spoken.py`) is a safety net applied to whatever the model returns (and to the whole
article when the model is skipped): no markdown, no code, numbers and units as a person says them.
"""

from __future__ import annotations

import re

import yaml

from skills.content.spoken import to_speech

SCRIPT_SYSTEM = (
    "You turn a blog article into the script of a short solo podcast episode that a text-to-speech "
    "voice will read aloud. Output only the words to be spoken, as plain sentences in paragraphs. "
    "No markdown, no headings, no lists, no code blocks, no URLs, no emoji. Describe code and "
    "commands in words instead of reading them out. Write numbers and units the way a person says "
    "them, for example 'forty tokens per second' or '128 gigabytes'. Open by saying the title, keep "
    "every fact of the article, invent nothing, and close with a one-sentence sign-off."
)

FRONTMATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def split_frontmatter(text: str) -> tuple[dict, str]:
    """(frontmatter dict, body) of an Astro/Jekyll-style markdown file."""
    match = FRONTMATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        data = {}
    return (data if isinstance(data, dict) else {}), text[match.end() :]


THINKING = re.compile(r"<think>.*?(</think>|\Z)|\[THINK\].*?(\[/THINK\]|\Z)", re.S | re.I)


def strip_thinking(text: str) -> str:
    """Drop a reasoning model's thinking blocks: only the answer is spoken or published."""
    return THINKING.sub("", text).strip()


TOML_FRONTMATTER = re.compile(r"\A\+\+\+\s*\n.*?\n\+\+\+\s*\n", re.S)


def clean_script(text: str) -> str:
    """Plain spoken prose (see spoken.py): no frontmatter, no thinking, no markdown, numbers in words."""
    _, text = split_frontmatter(strip_thinking(text))
    return to_speech(TOML_FRONTMATTER.sub("", text))


SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")


def chunk_script(text: str, max_chars: int) -> list[str]:
    """Sentence-bounded chunks of at most `max_chars`; an over-long sentence is cut at commas, then words."""
    pieces: list[str] = []
    for para in text.split("\n\n"):
        for sentence in SENTENCE.split(para.strip()):
            sentence = sentence.strip()
            if not sentence:
                continue
            if len(sentence) <= max_chars:
                pieces.append(sentence)
                continue
            pieces.extend(_split_long(sentence, max_chars))
    return _pack(pieces, max_chars)


def _pack(parts: list[str], max_chars: int) -> list[str]:
    out: list[str] = []
    for part in parts:
        if out and len(out[-1]) + 1 + len(part) <= max_chars:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut at clause boundaries first; a clause still too long is cut between words (or hard-cut)."""
    parts: list[str] = []
    for clause in re.split(r"(?<=[,;:])\s+", sentence):
        if len(clause) <= max_chars:
            parts.append(clause)
            continue
        for word in clause.split():
            parts.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return _pack(parts, max_chars)
