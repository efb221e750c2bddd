"""Markdown -> what a voice should say: the spoken-script normaliser (pure).

Applied to whatever the local model returns, and to the whole article when the model is skipped.
Block structure first (code, HTML, tables, lists wrapped over several lines, link definitions),
then inline text (links, addresses, flags, symbols), then numbers (units, ranges, decades,
versions). Rules, each guarded by the corpus test (tests/corpus/spoken/):
- code blocks, scripts, HTML comments, images and link definitions are not read;
- a small table becomes one sentence a row ("For Level 1: total time 112.6 seconds, ..."); a big
  one is replaced by a spoken note saying what it compares;
- a list item wrapped over several lines is one sentence, never "1200. requests a day";
- a URL, a path-like domain or an e-mail address is dropped; where the sentence points at it
  ("see", "at", "from", ...) it becomes "the link in the article" / "the address in the article",
  so "See <url> for the server." never turns into "See for the server.";
- `--flag-name` is "the flag name flag", snake_case is spoken as words;
- "1990s" is "nineteen nineties", never "1990 seconds"; "v0.11.0" is "version 0 point 11 point 0".
"""

from __future__ import annotations

import html
import re

UNITS = {
    "tok/s": "tokens per second",
    "tokens/s": "tokens per second",
    "it/s": "iterations per second",
    "req/s": "requests per second",
    "GB/s": "gigabytes per second",
    "MB/s": "megabytes per second",
    "Gbit/s": "gigabits per second",
    "Gb/s": "gigabits per second",
    "TB": "terabytes",
    "GB": "gigabytes",
    "GiB": "gibibytes",
    "MB": "megabytes",
    "MiB": "mebibytes",
    "KB": "kilobytes",
    "kB": "kilobytes",
    "ms": "milliseconds",
    "µs": "microseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "s": "seconds",
    "sec": "seconds",
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
NUMBER_UNIT = re.compile(rf"(?<![\w.])(?<!\w-)(\d+(?:[.,]\d+)?)\s?({_UNIT_ALT})(?![\w/-])")  # not in Qwen3-235B-A22B
RANGE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?[-–]\s?(\d+(?:\.\d+)?)(?=\s?[A-Za-z%°µ+])")
DECIMAL = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?!\w|\.\d)")
VERSION = re.compile(r"(?<![\w.])(v?)(\d+(?:\.\d+){2,})(?!\w|\.\d)|(?<![\w.])v(\d+(?:\.\d+)?)(?!\w|\.\d)")
PER_SECOND = re.compile(r"(?<![\w/])(tok/s|tokens/s|req/s|it/s)(?![\w/])")  # a rate named without a number
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
DECADE = re.compile(r"(?<![\w.])(?:(1[0-9]|20)|')?([0-9])0s\b")
TENS = {
    "1": "tens",
    "2": "twenties",
    "3": "thirties",
    "4": "forties",
    "5": "fifties",
    "6": "sixties",
    "7": "seventies",
    "8": "eighties",
    "9": "nineties",
}
CENTURY = {
    "10": "ten",
    "11": "eleven",
    "12": "twelve",
    "13": "thirteen",
    "14": "fourteen",
    "15": "fifteen",
    "16": "sixteen",
    "17": "seventeen",
    "18": "eighteen",
    "19": "nineteen",
    "20": "twenty",
}

FENCE = re.compile(r"^[ \t]*(```|~~~).*?(^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
LIST_ITEM = re.compile(r"^([ \t]*)([-*+]|\d+[.)])[ \t]+(\[[ xX]\][ \t]+)?(.*)$")
BLOCK_START = re.compile(r"^[ \t]*(#{1,6}[ \t]|>|\||```|~~~|([-*+]|\d+[.)])[ \t]|[-*_]{3,}[ \t]*$)")
LINK_DEF = re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]*\S+.*$", re.M)

POINTER = r"(?:see|at|from|on|to|via|visit|read|check|check out|in|here|under|download|email|e-mail|contact|write to)"
URL = r"(?:https?://|ftp://|www\.)[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'\"]"
EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}"
TLD = r"(?:com|org|net|io|dev|ai|rs|it|ru|asia|co|uk|de|fr|app|sh|me|info|edu|gov|cloud|tech|so|gg|tv|xyz)"
PATH_DOMAIN = rf"(?<![\w@/.-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.{TLD}(?::\d+)?/[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'\"]"
BARE_DOMAIN = re.compile(rf"(?<![\w@/.-])([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*)\.({TLD})\b(?![\w/@-])")
ADDRESS = re.compile(rf"(?i:\b({POINTER})\s+)?(<)?({URL}|{EMAIL}|{PATH_DOMAIN})(?(2)>)")
FLAG = re.compile(
    r"(?<![\w-])((?i:the)\s+)?--([A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*)"
    r"(?:=(\S+)|\s+(\d[\w.]*|[A-Z][A-Z0-9_]+\b))?(\s+(?:flag|option)\b)?"
)
SYMBOLS = {
    "→": " to ",
    "⇒": " to ",
    "->": " to ",
    "←": " from ",
    "≈": "about ",
    "~": "about ",
    "≤": " at most ",
    "≥": " at least ",
    "±": " plus or minus ",
    "×": " times ",
    "&": " and ",
    "✅": "yes",
    "✔": "yes",
    "❌": "no",
    "✗": "no",
}
ABBREVIATIONS = {
    r"\be\.g\.": "for example",
    r"\bi\.e\.": "that is",
    r"\betc\.": "and so on",
    r"\bvs\.?(?=\s)": "versus",
    r"\bN/A\b": "not applicable",
    r"\bw/o\b": "without",
}
TABLE_MAX_ROWS = 8
TABLE_MAX_COLS = 5


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _cell_text(cell: str) -> str:
    return inline(cell).strip(" .")


def table_to_speech(header: list[str], rows: list[list[str]]) -> str:
    """A small table as one sentence a row; a big one as a note of what it compares."""
    names = [_cell_text(h) for h in header]
    if len(rows) > TABLE_MAX_ROWS or len(names) > TABLE_MAX_COLS:
        about = ", ".join(n for n in names if n)
        return f"The article has a table here, with {len(rows)} rows comparing {about}; it is not read out."
    sentences = []
    for row in rows:
        values = [_cell_text(c) for c in row] + [""] * (len(names) - len(row))
        first = values[0] or names[0]
        pairs = zip(names[1:], values[1:], strict=False)
        parts = [f"{name} {value}" if name else value for name, value in pairs if value]
        if parts:
            sentences.append(f"For {first}: {', '.join(parts)}.")
        elif first:
            sentences.append(f"{first}.")
    return "\n".join(sentences)


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if "|" in lines[i] and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]) and "-" in lines[i + 1]:
            header = _cells(lines[i])
            rows = []
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                rows.append(_cells(lines[j]))
                j += 1
            out += ["", table_to_speech(header, rows), ""]
            i = j
            continue
        out.append(lines[i])
        i += 1
    return out


def _join_wrapped(lines: list[str]) -> list[str]:
    """Lines of one list item (or one paragraph) become one line: a hard wrap is not a sentence end."""
    out: list[str] = []
    in_item = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            out.append("")
            in_item = False
            continue
        item = LIST_ITEM.match(line)
        if item:
            out.append(f"{item.group(4).strip()}.")
            in_item = True
            continue
        if out and out[-1] and not BLOCK_START.match(line) and not BLOCK_START.match(out[-1]):
            if in_item:  # a continuation of the item: move the sentence end after it
                out[-1] = f"{out[-1][:-1]} {stripped}."
            else:
                out[-1] = f"{out[-1]} {stripped}"
            continue
        in_item = False
        out.append(line)
    return out


def blocks(text: str) -> str:
    """Block-level markdown/HTML -> lines of prose (headings and list items end a sentence)."""
    text = html.unescape(re.sub(r"<!--.*?(-->|\Z)", " ", text, flags=re.S))
    text = re.sub(rf"<({URL}|{EMAIL})>", r"\1", text)  # autolinks are addresses, not tags
    text = re.sub(r"<(script|style)\b.*?(</\1>|\Z)", " ", text, flags=re.S | re.I)
    text = FENCE.sub("\n", text)
    text = LINK_DEF.sub("", text)
    text = re.sub(r"^[ \t]{0,3}\[\^[^\]]+\]:.*$", "", text, flags=re.M)  # footnote definitions
    text = re.sub(r"<br\s*/?>|</(p|div|li|tr|h\d)>", "\n", text, flags=re.I)
    text = re.sub(r"</?[A-Za-z][^>]*>", " ", text)  # other tags: their text stays
    text = re.sub(r"^[ \t]*>[ \t]?\[!(\w+)\][ \t]*$", lambda m: f"{m.group(1).capitalize()}.", text, flags=re.M)
    text = re.sub(r"^[ \t]*>[ \t]?", "", text, flags=re.M)
    text = re.sub(r"^[ \t]*([-*_][ \t]*){3,}$", "", text, flags=re.M)  # horizontal rules
    lines = _tables(text.splitlines())
    headed = []
    for line in lines:
        heading = re.match(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", line)
        headed += ["", f"{heading.group(1)}.", ""] if heading else [line]
    return "\n".join(_join_wrapped(headed))


def _address(match: re.Match) -> str:
    pointer, target = match.group(1), match.group(3)
    if not pointer:
        return ""
    what = "address" if re.fullmatch(EMAIL, target) else "link"
    return f"{pointer} the {what} in the article"


def _flag(match: re.Match) -> str:
    name = re.sub(r"[-_]+", " ", match.group(2))
    given = match.group(3) or match.group(4)
    value = f" set to {given}" if given else ""
    kind = (match.group(5) or " flag").strip()
    article = "The" if (match.group(1) or "").startswith("T") else "the"
    return f"{article} {name} {kind}{value}"


def inline(text: str) -> str:
    """Inline markdown, addresses, flags and symbols -> words."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)|!\[([^\]]*)\]\[[^\]]*\]", "", text)  # images
    text = re.sub(r"\[\^[^\]]+\]", "", text)  # footnote marks
    text = re.sub(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)", r"\1", text)  # [text](url) keeps its text
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)  # [text][ref]
    text = re.sub(r"\[!(\w+)\]", lambda m: m.group(1).capitalize() + ":", text)
    text = ADDRESS.sub(_address, text)
    text = re.sub(rf"(?i)\b({POINTER})\s+(?=[.,;:!?)])", lambda m: f"{m.group(1)} the link in the article", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(?<=[A-Za-z0-9])_(?=[A-Za-z0-9])", " ", text)  # snake_case: words (and never emphasis)
    text = re.sub(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|])", r"\1", text)  # markdown escapes
    text = BARE_DOMAIN.sub(lambda m: f"{m.group(1).replace('.', ' dot ')} dot {m.group(2)}", text)
    text = FLAG.sub(_flag, text)
    for pattern, words in ABBREVIATIONS.items():
        text = re.sub(pattern, words, text)
    for symbol, words in SYMBOLS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"(?<=\d)\+", " plus", text)
    text = re.sub(r"#(?=\d)", "", text)  # "(#2-4)"
    text = re.sub(r"#(\w)", r"\1", text)  # hashtags
    text = text.replace("|", ", ")
    text = re.sub(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]", "", text)  # other emoji and dingbats
    text = re.sub(r"\(\s*[,;:!?]?\s*\)", "", text)  # what a dropped link leaves, and "(!)"
    text = re.sub(r"[\[\]*]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", " ", text)  # literal brackets, stars, lone _
    return text


def _decade(match: re.Match) -> str:
    century, tens = match.group(1), match.group(2)
    if tens == "0":
        if century is None or century not in CENTURY:
            return match.group(0)
        return "two thousands" if century == "20" else f"{CENTURY[century]} hundreds"
    word = TENS[tens]
    return f"{CENTURY[century]} {word}" if century else word


def numbers(text: str) -> str:
    """Numbers as a person says them: decades, versions, ranges, units, decimals."""
    text = THOUSANDS.sub("", text)
    text = DECADE.sub(_decade, text)
    text = PER_SECOND.sub(lambda m: UNITS[m.group(1)], text)
    text = VERSION.sub(
        lambda m: ("version " if m.group(1) or m.group(3) else "") + (m.group(2) or m.group(3)).replace(".", " point "),
        text,
    )
    text = RANGE.sub(r"\1 to \2", text)
    text = NUMBER_UNIT.sub(lambda m: f"{m.group(1)} {UNITS[m.group(2)]}", text)
    text = DECIMAL.sub(r"\1 point \2", text)
    return text


def to_speech(text: str) -> str:
    """Plain spoken prose: paragraphs kept, everything a voice cannot read removed or spelled out."""
    text = numbers(inline(blocks(text)))
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        para = re.sub(r"\s+", " ", para).strip()
        para = re.sub(r"\s+([.,;:!?])", r"\1", para)
        para = re.sub(r"([.!?])[.,;:]+", r"\1", para)
        para = re.sub(r"([,;:])[,;:]+", r"\1", para)
        para = re.sub(r"\.\.+", ".", para).strip(" ,;")
        para = re.sub(r":$", ".", para)
        if re.search(r"[A-Za-z0-9]", para):
            paragraphs.append(para)
    return "\n\n".join(paragraphs)
