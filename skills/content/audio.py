"""Speech engines and the ffmpeg steps of a podcast: synthesize chunks, join, normalise, tag, probe.

Engines return 24 kHz mono 16-bit PCM so chunks from either engine join without resampling:
`vllm-omni` (Voxtral TTS on the GPU, OpenAI speech API) and `espeak` (local, no GPU, the default
for the demo and for machines without a GPU).
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import httpx

from hub.audio import SAMPLE_RATE, AudioError, espeak_pcm, pcm_input, run_tool
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

    def __init__(self, base_url: str, model: str, voice: str, timeout: float = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self.model, self.voice, self.timeout = model, voice, timeout

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
            "max_new_tokens": 2048,
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


async def encode_episode(
    pcm: bytes, out: Path, fmt: str, *, title: str, artist: str, lufs: float, album: str | None = None
) -> None:
    """Loudness-normalise (EBU R128 loudnorm) and encode with title/artist tags."""
    tags = ["-metadata", f"title={title}", "-metadata", f"artist={artist}"]
    if album:
        tags += ["-metadata", f"album={album}"]
    await run_tool(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *pcm_input(),
            "-af",
            f"loudnorm=I={lufs:g}:TP=-1.5:LRA=11",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            *tags,
            *CODECS[fmt],
            str(out),
        ],
        pcm,
    )


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
