"""Speech engines and the ffmpeg steps of a podcast: synthesize chunks, join, normalise, tag, probe.

Engines return 24 kHz mono 16-bit PCM so chunks from either engine join without resampling:
`vllm-omni` (Voxtral TTS on the GPU, OpenAI speech API) and `espeak` (local, no GPU, the default
for the demo and for machines without a GPU).
"""

from __future__ import annotations

import io
import json
import math
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import httpx

from hub.audio import PCM_FORMAT, SAMPLE_RATE, AudioError, espeak_pcm, pcm_input, run_tool, run_tool_output
from hub.errors import BackendDown

ESPEAK_VOICES = {
    "casual_female": ("f3", 50),
    "casual_male": ("m3", 50),
    "cheerful_female": ("f4", 62),
    "neutral_female": ("f2", 45),
    "neutral_male": ("m1", 45),
}
CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "96k", "-f", "mp3"],
    "opus": ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"],
}
TRUE_PEAK_DBTP = -1.5  # loudnorm's ceiling: 0.5 dB of headroom under -1 dBTP for the encoder's overshoot
LRA = 11


def wav_to_pcm(data: bytes) -> bytes:
    """The PCM frames of a WAV file, checked to be 24 kHz mono 16-bit."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"the speech server returned audio that is not a WAV file: {exc}") from None
    if fmt != (SAMPLE_RATE, 1, 2):
        raise AudioError(f"expected 24 kHz mono 16-bit speech, got {fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]}-bit")
    return frames


class VllmOmniEngine:
    """Voxtral TTS behind vllm-omni's OpenAI-compatible speech endpoint."""

    name = "vllm-omni"

    def __init__(
        self,
        base_url: str,
        model: str,
        voice: str,
        timeout: float = 300,
        *,
        max_new_tokens: int = 2048,
        tokens_per_second: float = 12.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model, self.voice, self.timeout = model, voice, timeout
        self.max_new_tokens = max_new_tokens
        # one request stops after max_new_tokens codec frames: the longest audio it can return
        self.max_seconds: float | None = max_new_tokens / tokens_per_second

    async def check_voice(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                resp = await http.get(self.base_url + "/v1/audio/voices")
        except httpx.TransportError as exc:
            raise BackendDown(f"the speech server at {self.base_url} is unreachable: {exc}") from None
        if resp.status_code == 200:
            voices = resp.json().get("voices", [])
            if voices and self.voice not in voices:
                raise AudioError(f"unknown voice {self.voice!r}; this server has: {', '.join(voices)}")

    async def synth(self, text: str) -> bytes:
        body = {
            "input": text,
            "model": self.model,
            "voice": self.voice,
            "response_format": "wav",
            "max_new_tokens": self.max_new_tokens,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                resp = await http.post(self.base_url + "/v1/audio/speech", json=body)
        except httpx.TransportError as exc:
            raise BackendDown(f"the speech server at {self.base_url} is unreachable: {exc}") from None
        if resp.status_code != 200:
            try:
                err = resp.json().get("error") or resp.json()
                message = err.get("message") if isinstance(err, dict) else str(err)
            except ValueError:
                message = resp.text[:200]
            raise AudioError(f"the speech server refused a chunk ({resp.status_code}): {message}")
        return wav_to_pcm(resp.content)


class EspeakEngine:
    """espeak-ng on the CPU, resampled to the same 24 kHz mono as Voxtral."""

    name = "espeak"
    max_seconds: float | None = None  # espeak-ng has no output cap

    def __init__(self, voice: str) -> None:
        if voice not in ESPEAK_VOICES:
            raise AudioError(f"unknown voice {voice!r}; choose one of {', '.join(ESPEAK_VOICES)}")
        self.variant, self.pitch = ESPEAK_VOICES[voice]
        self.voice = voice

    async def check_voice(self) -> None:
        return None

    async def synth(self, text: str) -> bytes:
        return await espeak_pcm(text, variant=self.variant, pitch=self.pitch, wpm=165)


def pcm_seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / SAMPLE_RATE


FASTEST_CHARS_PER_S = 40.0  # no voice reads faster: audio shorter than this for its text lost words
CAP_FRACTION = 0.98  # audio this close to the request's output cap stopped at the cap, not at the text's end


def chunk_problem(engine, text: str, seconds: float) -> str | None:
    """Why a chunk's audio cannot be the whole text, or None when its duration is plausible."""
    cap = engine.max_seconds
    if cap is not None and seconds >= CAP_FRACTION * cap:
        return f"stopped at {seconds:.1f} s, the speech server's cap (max_new_tokens {engine.max_new_tokens})"
    letters = sum(c.isalnum() for c in text)
    if letters >= 80 and seconds < letters / FASTEST_CHARS_PER_S:
        return f"{seconds:.1f} s of audio for {letters} letters is too short to hold them all"
    return None


async def synth_checked(engine, text: str, label: str, depth: int = 0) -> list[bytes]:
    """Speech for `text`, each part's duration checked against its text.

    A chunk that came back cut (at the server's output cap) or too short is split at sentence,
    then clause, then word boundaries and each half spoken again; a chunk that cannot be split
    further, or still fails after three splits, fails the job with the reason instead of
    shipping an episode with words missing.
    """
    from skills.content.script import chunk_script  # pure text helper; kept out of the engines' import

    pcm = await engine.synth(text)
    problem = chunk_problem(engine, text, pcm_seconds(pcm))
    if problem is None:
        return [pcm]
    halves = chunk_script(text, max(1, math.ceil(len(text) / 2)))
    if depth >= 3 or len(halves) < 2:
        raise AudioError(
            f"speech chunk {label} ({len(text)} characters) {problem}, even split {depth} time(s); "
            "lower skills.content.tts_chunk_chars or raise skills.content.tts_max_new_tokens"
        )
    parts: list[bytes] = []
    for i, half in enumerate(halves, 1):
        parts += await synth_checked(engine, half, f"{label}.{i}", depth + 1)
    return parts


TARGET_TOLERANCE_LU = 0.4  # the written file is re-encoded when it misses the target by more (ebur128: 0.1 steps)
MAX_TRUE_PEAK_DBTP = -1.0  # what the written file may reach, measured by ebur128


@dataclass(frozen=True)
class Loudness:
    """An EBU R128 measurement (ffmpeg's ebur128 filter): what loudnorm's linear mode needs."""

    i: float  # integrated loudness, LUFS
    tp: float  # true peak, dBTP
    lra: float
    thresh: float

    def filter(self, target: float, ceiling: float) -> str:
        """The second pass: a linear gain to `target` from these measurements."""
        return (
            f"loudnorm=I={target:.2f}:TP={ceiling:.2f}:LRA={LRA}:measured_I={self.i:.2f}:"
            f"measured_TP={self.tp:.2f}:measured_LRA={self.lra:.2f}:measured_thresh={self.thresh:.2f}:"
            "linear=true:print_format=json"
        )

    def fits(self, target: float, ceiling: float) -> bool:
        """A linear gain to `target` keeps the true peak under `ceiling` (loudnorm's linear condition)."""
        return self.tp + (target - self.i) <= ceiling


def loudnorm_report(stderr: str) -> dict:
    """The JSON block loudnorm prints (print_format=json) at the end of ffmpeg's stderr."""
    start = stderr.rfind("{")
    end = stderr.rfind("}")
    try:
        return json.loads(stderr[start : end + 1]) if 0 <= start < end else {}
    except ValueError:
        return {}


SUMMARY = re.compile(
    r"Integrated loudness:\s*I:\s*(?P<i>-?[\d.]+|-inf) LUFS\s*Threshold:\s*(?P<thresh>-?[\d.]+|-inf) LUFS"
    r".*?LRA:\s*(?P<lra>-?[\d.]+|-?inf) LU"
    r".*?True peak:\s*Peak:\s*(?P<tp>-?[\d.]+|-inf) dBFS",
    re.S,
)


def ebur128_summary(stderr: str) -> Loudness | None:
    """The summary ffmpeg's ebur128 filter prints at the end (EBU R128 / ITU BS.1770)."""
    match = SUMMARY.search(stderr[stderr.rfind("Summary:") :])
    if not match:
        return None
    return Loudness(*(float(match.group(k)) for k in ("i", "tp", "lra", "thresh")))


async def measure(pcm: bytes) -> Loudness:
    """The first pass: integrated loudness, true peak, range and gate of our raw PCM (ebur128)."""
    _, err = await run_tool_output(
        ["ffmpeg", "-hide_banner", "-nostats", *pcm_input(), "-af", "ebur128=peak=true", "-f", "null", "-"], pcm
    )
    loud = ebur128_summary(err)
    if loud is None:
        raise AudioError(f"ffmpeg ebur128 gave no measurement: {err.strip()[-300:]}")
    if not (math.isfinite(loud.i) and math.isfinite(loud.tp)) or loud.i <= -70:
        raise AudioError("the episode is silent: nothing to normalise")
    return loud


async def limit_peaks(pcm: bytes, gain_db: float, ceiling_db: float) -> bytes:
    """Raise by `gain_db` and hold the peaks under `ceiling_db` (4x oversampled, so inter-sample peaks
    count; in floating point, so nothing clips on the way), with no delay added."""
    limit = min(1.0, max(0.0625, 10 ** (ceiling_db / 20)))
    return await run_tool(
        [
            "ffmpeg", "-v", "error", *pcm_input(),
            "-af", f"volume={gain_db:.2f}dB:precision=float,aresample={4 * SAMPLE_RATE},"
            f"alimiter=limit={limit:.5f}:attack=1:release=50:level=false:latency=true,aresample={SAMPLE_RATE}",
            *PCM_FORMAT, "pipe:1",
        ],
        pcm,
    )  # fmt: skip


async def fit_for_gain(pcm: bytes, loud: Loudness, target: float, ceiling: float) -> tuple[bytes, Loudness]:
    """PCM whose loudness reaches `target` by a linear gain with its true peak under `ceiling`.

    Speech has a high peak-to-loudness ratio: raising espeak-ng's -20 LUFS to -16 would push its
    peaks over the ceiling, and loudnorm then silently falls back to its dynamic mode, which lands
    a LUFS or more short (-17.5 in a single pass). So the signal is first brought near the target
    with its peaks limited below the ceiling, re-measured (limiting lowers the loudness a little),
    and limited again with more headroom if the last linear step still does not fit.
    """
    margin = 1.0  # headroom for the loudness the limiter takes away
    for _ in range(4):
        if loud.fits(target, ceiling):
            return pcm, loud
        pcm = await limit_peaks(pcm, target - loud.i, ceiling - margin)  # the last gain (what limiting
        # took away) must then fit under the margin
        loud = await measure(pcm)
        margin *= 2
    if loud.fits(target, ceiling):
        return pcm, loud
    raise AudioError(
        f"cannot reach {target:g} LUFS with a linear gain under {ceiling:g} dBTP "
        f"(measured {loud.i:.1f} LUFS, {loud.tp:.1f} dBTP after limiting)"
    )


async def encode_episode(
    pcm: bytes, out: Path, fmt: str, *, title: str, artist: str, lufs: float, album: str | None = None
) -> tuple[float, float]:
    """Two-pass loudness normalisation (measure, then a linear gain), encoded with title/artist tags.

    The written file is measured with ebur128; a lossy encoder moves the loudness (mp3's low-pass
    takes about 0.5 LU off speech) and the true peak, so a miss is made up and encoded again.
    -> the file's (integrated LUFS, true peak dBTP).
    """
    tags = ["-metadata", f"title={title}", "-metadata", f"artist={artist}"]
    if album:
        tags += ["-metadata", f"album={album}"]
    loud = await measure(pcm)
    goal, ceiling = lufs, TRUE_PEAK_DBTP
    for _ in range(3):
        pcm, loud = await fit_for_gain(pcm, loud, goal, ceiling)
        _, err = await run_tool_output(
            [
                "ffmpeg", "-hide_banner", "-nostats", "-y", *pcm_input(), "-af", loud.filter(goal, ceiling),
                "-ar", str(SAMPLE_RATE), "-ac", "1", *tags, *CODECS[fmt], str(out),
            ],
            pcm,
        )  # fmt: skip
        mode = loudnorm_report(err).get("normalization_type")
        if mode != "linear":
            raise AudioError(f"ffmpeg loudnorm did not apply a linear gain (mode {mode!r}): {err.strip()[-200:]}")
        got_i, got_tp = await loudness(out)
        if abs(got_i - lufs) <= TARGET_TOLERANCE_LU and got_tp <= MAX_TRUE_PEAK_DBTP:
            return got_i, got_tp
        goal += lufs - got_i
        ceiling -= max(0.0, got_tp - MAX_TRUE_PEAK_DBTP + 0.2)
    raise AudioError(
        f"the episode measures {got_i:.1f} LUFS, {got_tp:.1f} dBTP after encoding; "
        f"wanted {lufs:g} ± {TARGET_TOLERANCE_LU} LUFS under {MAX_TRUE_PEAK_DBTP:g} dBTP"
    )


async def loudness(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of an encoded file, by ffmpeg's ebur128 filter (EBU R128)."""
    _, err = await run_tool_output(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"]
    )
    loud = ebur128_summary(err)
    if loud is None:
        raise AudioError(f"ffmpeg ebur128 gave no summary for {path.name}")
    return loud.i, loud.tp


async def probe(path: Path) -> dict:
    """ffprobe's view of a file: duration (s), codec, sample rate, channels, tags."""
    out = await run_tool(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)])
    info = json.loads(out)
    stream = info["streams"][0]
    fmt = info["format"]
    tags = {k.lower(): v for k, v in {**fmt.get("tags", {}), **stream.get("tags", {})}.items()}
    return {
        "duration": float(fmt["duration"]),
        "codec": stream["codec_name"],
        "sample_rate": int(stream["sample_rate"]),
        "channels": int(stream["channels"]),
        "tags": tags,
    }
