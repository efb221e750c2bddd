"""Article -> spoken script: the model's prompt, a markdown-free clean-up and TTS-sized chunks.

The clean-up is a safety net applied to whatever the model returns (and the whole rewrite when
the model is skipped): no markdown, no code blocks, numbers and units as a person says them.
"""

from __future__ import annotations

import re

import yaml

SCRIPT_SYSTEM = (
    "You turn a blog article into the script of a short solo podcast episode that a text-to-speech "
    "voice will read aloud. Output only the words to be spoken, as plain sentences in paragraphs. "
    "No markdown, no headings, no lists, no code blocks, no URLs, no emoji. Describe code and "
    "commands in words instead of reading them out. Write numbers and units the way a person says "
    "them, for example 'forty tokens per second' or '128 gigabytes'. Open by saying the title, keep "
    "every fact of the article, invent nothing, and close with a one-sentence sign-off."
)

UNITS = {
    "tok/s": "tokens per second",
    "tokens/s": "tokens per second",
    "it/s": "iterations per second",
    "GB/s": "gigabytes per second",
    "MB/s": "megabytes per second",
    "Gbit/s": "gigabits per second",
    "TB": "terabytes",
    "GB": "gigabytes",
    "GiB": "gibibytes",
    "MB": "megabytes",
    "MiB": "mebibytes",
    "KB": "kilobytes",
    "kB": "kilobytes",
    "ms": "milliseconds",
    "µs": "microseconds",
    "ns": "nanoseconds",
    "s": "seconds",
    "min": "minutes",
    "h": "hours",
    "W": "watts",
    "kW": "kilowatts",
    "GHz": "gigahertz",
    "MHz": "megahertz",
    "kHz": "kilohertz",
    "Hz": "hertz",
    "°C": "degrees Celsius",
    "°F": "degrees Fahrenheit",
    "B": "billion",
    "M": "million",
    "K": "thousand",
    "k": "thousand",
    "x": "times",
    "%": "percent",
}
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
NUMBER_UNIT = re.compile(rf"(?<![\w.])(\d+(?:[.,]\d+)?)\s?({_UNIT_ALT})(?![\w/])")
RANGE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?[-–]\s?(\d+(?:\.\d+)?)(?=\s?[A-Za-z%°µ])")
DECIMAL = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?![\w.])")
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
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


def strip_markdown(text: str) -> str:
    _, text = split_frontmatter(strip_thinking(text))
    text = re.sub(r"```.*?(```|\Z)", " ", text, flags=re.S)  # fenced code: not read out
    text = re.sub(r"~~~.*?(~~~|\Z)", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)  # HTML / MDX components
    text = re.sub(r"^[ \t]*(import|export)[ \t].*$", " ", text, flags=re.M)  # MDX imports
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"^[ \t]{0,3}#{1,6}[ \t]*(.+?)[ \t]*#*[ \t]*$", r"\1.", text, flags=re.M)  # headings end a sentence
    text = re.sub(r"^[ \t]*([-*+]|\d+[.)])[ \t]+(.*)$", r"\2.", text, flags=re.M)  # list items
    text = re.sub(r"^[ \t]*>[ \t]?", "", text, flags=re.M)
    text = re.sub(r"^[ \t]*\|?[ \t]*:?-{3,}.*$", "", text, flags=re.M)  # table rules
    text = text.replace("|", ", ")
    text = re.sub(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"^[ \t]*([-*_][ \t]*){3,}$", "", text, flags=re.M)  # horizontal rules
    text = re.sub(r"\.\.+", ".", text)
    return text


def speak_numbers(text: str) -> str:
    text = THOUSANDS.sub("", text)
    text = RANGE.sub(r"\1 to \2", text)
    text = NUMBER_UNIT.sub(lambda m: f"{m.group(1)} {UNITS[m.group(2)]}", text)
    text = DECIMAL.sub(r"\1 point \2", text)
    return text


def clean_script(text: str) -> str:
    """Plain spoken prose: paragraphs kept, everything a voice cannot read removed or spelled out."""
    text = speak_numbers(strip_markdown(text))
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        para = re.sub(r"\s+", " ", para).strip()
        para = re.sub(r"\s+([.,;:!?])", r"\1", para)
        para = re.sub(r"([.!?])[.,]+", r"\1", para)
        if re.search(r"[A-Za-z0-9]", para):
            paragraphs.append(para)
    return "\n\n".join(paragraphs)


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
