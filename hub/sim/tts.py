"""vllm-omni-compatible speech stand-in (`vllm serve mistralai/Voxtral-4B-TTS-2603 --omni`).

Real audio: espeak-ng speaks the text, ffmpeg resamples it to the model's 24 kHz mono and encodes
mp3/flac/opus; without espeak-ng a tone of text-proportional length is generated instead.
`create_app(**options)`: `model`, `voices`, `engine` ("espeak" | "tone"), `rtf` (seconds of
delay per second of audio, to mimic generation time), `fail_voice` (a voice whose requests fail
mid-generation, for error paths).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import shutil
import struct
import time
from array import array

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub import audio

SAMPLE_RATE = audio.SAMPLE_RATE
FRAME_RATE = 12.5  # codec frames (output tokens) per second of audio
SAMPLES_PER_TOKEN = int(SAMPLE_RATE / FRAME_RATE)
DEFAULT_MODEL = "mistralai/Voxtral-4B-TTS-2603"
DEFAULT_VOICES = ["casual_female", "casual_male", "cheerful_female", "neutral_female", "neutral_male"]
MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
FFMPEG_ARGS = {
    "flac": ["-f", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
    "opus": ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"],
}


class SpeechError(Exception):
    def __init__(self, message: str, status: int = 400, type_: str = "BadRequestError", param: str | None = None):
        super().__init__(message)
        self.status, self.type, self.param = status, type_, param

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.status}}


def wav_header(n_bytes: int, rate: int = SAMPLE_RATE) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + n_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", n_bytes)
    )


async def _run(cmd: list[str], data: bytes | None = None) -> bytes:
    try:
        return await audio.run_tool(cmd, data)
    except audio.AudioError as exc:
        raise SpeechError(str(exc), 500, "InternalServerError") from None


def tone_pcm(text: str, speed: float) -> bytes:
    """Fallback voice: a soft 220 Hz tone, about 60 ms per character at speed 1.0."""
    seconds = max(0.3, 0.06 * len(text) / speed)
    n = int(seconds * SAMPLE_RATE)
    samples = array(
        "h",
        (
            int(6000 * math.sin(2 * math.pi * 220 * i / SAMPLE_RATE) * min(1.0, i / 600, (n - i) / 600))
            for i in range(n)
        ),
    )
    return samples.tobytes()


async def espeak_pcm(text: str, voice: str, speed: float, seed: int | None) -> bytes:
    """espeak-ng at 22.05 kHz, resampled by ffmpeg to 24 kHz mono s16le."""
    variant = "f3" if voice.endswith("female") else "m3"
    pitch = 60 if voice.startswith("cheerful") else 50
    if seed is not None:
        pitch = 40 + seed % 30
    rate = max(80, min(450, int(175 * speed)))
    try:
        return await audio.espeak_pcm(text, variant=variant, pitch=pitch, wpm=rate)
    except audio.AudioError as exc:
        raise SpeechError(str(exc), 500, "InternalServerError") from None


async def encode(pcm: bytes, fmt: str) -> bytes:
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        return wav_header(len(pcm)) + pcm
    return await _run(
        [
            "ffmpeg",
            "-v",
            "error",
            *audio.pcm_input(),
            *FFMPEG_ARGS[fmt],
            "pipe:1",
        ],
        pcm,
    )


def create_app(
    *,
    model: str = DEFAULT_MODEL,
    voices: list[str] | None = None,
    engine: str = "espeak",
    rtf: float = 0.0,
    fail_voice: str | None = None,
) -> Starlette:
    voices = list(voices or DEFAULT_VOICES)
    use_espeak = engine == "espeak" and shutil.which("espeak-ng") and shutil.which("ffmpeg")
    state = {"sleeping": False, "sleep_level": 0, "created": int(time.time())}

    def parse(body: dict) -> dict:
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise SpeechError("Input text cannot be empty", param="input")
        req_model = body.get("model")
        if req_model not in (None, "", model):
            raise SpeechError(f"The model `{req_model}` does not exist.", 404, "NotFoundError", "model")
        voice = str(body.get("voice") or voices[0]).lower()
        if voice not in voices:
            raise SpeechError(f"Invalid voice '{voice}'. Supported: {', '.join(voices)}", param="voice")
        fmt = body.get("response_format") or "wav"
        if fmt not in MEDIA_TYPES:
            raise SpeechError(
                f"Invalid response_format '{fmt}'. Supported: {', '.join(MEDIA_TYPES)}", param="response_format"
            )
        speed = body.get("speed", 1.0)
        if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
            raise SpeechError("speed must be between 0.25 and 4.0", param="speed")
        max_new = body.get("max_new_tokens", 2048)
        if not isinstance(max_new, int) or not 1 <= max_new <= 4096:
            raise SpeechError("max_new_tokens must be between 1 and 4096", param="max_new_tokens")
        stream = bool(body.get("stream")) or body.get("stream_format") in ("sse", "audio")
        if stream and fmt not in ("pcm", "wav"):
            raise SpeechError("Streaming requires response_format 'pcm' or 'wav'", param="response_format")
        if stream and speed != 1.0:
            raise SpeechError("Streaming requires speed 1.0", param="speed")
        seed = body.get("seed")
        return {
            "text": text,
            "voice": voice,
            "fmt": fmt,
            "speed": float(speed),
            "max_new": max_new,
            "stream": stream,
            "stream_format": body.get("stream_format") or ("sse" if stream else None),
            "seed": seed if isinstance(seed, int) else None,
        }

    async def synthesize(p: dict) -> tuple[bytes, dict]:
        if p["voice"] == fail_voice:
            raise SpeechError("Speech generation failed: engine core died", 500, "InternalServerError")
        if use_espeak:
            pcm = await espeak_pcm(p["text"], p["voice"], p["speed"], p["seed"])
        else:
            pcm = tone_pcm(p["text"], p["speed"])
        pcm = pcm[: p["max_new"] * SAMPLES_PER_TOKEN * 2]  # the token budget caps the audio
        if rtf:
            await asyncio.sleep(rtf * len(pcm) / 2 / SAMPLE_RATE)
        text_tokens = max(1, len(p["text"]) // 4)
        out_tokens = math.ceil(len(pcm) / 2 / SAMPLES_PER_TOKEN)
        usage = {
            "input_tokens": text_tokens,
            "output_tokens": out_tokens,
            "total_tokens": text_tokens + out_tokens,
            "input_token_details": {"text_tokens": text_tokens, "audio_tokens": 0},
        }
        return pcm, usage

    def error(ex: SpeechError) -> JSONResponse:
        return JSONResponse(ex.body(), status_code=ex.status)

    async def speech(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as ex:
            return error(SpeechError(f"Invalid JSON body: {ex}"))
        try:
            p = parse(body)
            if state["sleeping"]:
                raise SpeechError("The engine is sleeping; call /wake_up first", 503, "ServiceUnavailableError")
            if p["stream"]:
                return stream_response(p)
            pcm, usage = await synthesize(p)
            data = await encode(pcm, p["fmt"])
        except SpeechError as ex:
            return error(ex)
        return Response(
            data,
            media_type=MEDIA_TYPES[p["fmt"]],
            headers={
                "x-vllm-omni-input-tokens": str(usage["input_tokens"]),
                "x-vllm-omni-output-tokens": str(usage["output_tokens"]),
                "x-vllm-omni-total-tokens": str(usage["total_tokens"]),
                "x-vllm-omni-input-text-tokens": str(usage["input_token_details"]["text_tokens"]),
                "x-vllm-omni-input-audio-tokens": "0",
            },
        )

    def stream_response(p: dict) -> Response:
        chunk = SAMPLE_RATE * 2 // 2  # half a second of s16le per delta

        async def raw_audio():
            pcm, _ = await synthesize(p)
            if p["fmt"] == "wav":
                yield wav_header(0xFFFFFFFF - 36)
            for i in range(0, len(pcm), chunk):
                yield pcm[i : i + chunk]

        async def sse():
            def event(name: str, data: dict) -> str:
                return f"event: {name}\ndata: {json.dumps(data)}\n\n"

            try:
                pcm, usage = await synthesize(p)
            except SpeechError as ex:
                yield event(
                    "speech.audio.error",
                    {
                        "type": "speech.audio.error",
                        "error": {"message": str(ex), "type": "server_error", "param": None, "code": ex.status},
                    },
                )
                return
            first = wav_header(0xFFFFFFFF - 36) if p["fmt"] == "wav" else b""
            for i in range(0, len(pcm), chunk):
                audio = first + pcm[i : i + chunk]
                first = b""
                yield event(
                    "speech.audio.delta",
                    {
                        "type": "speech.audio.delta",
                        "audio": base64.b64encode(audio).decode(),
                        "response_format": p["fmt"],
                    },
                )
            yield event("speech.audio.done", {"type": "speech.audio.done", "usage": usage})

        if p["stream_format"] == "audio":
            return StreamingResponse(raw_audio(), media_type=MEDIA_TYPES[p["fmt"]])
        return StreamingResponse(sse(), media_type="text/event-stream")

    async def list_voices(request: Request) -> Response:
        return JSONResponse({"voices": voices, "uploaded_voices": []})

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": model,
                        "object": "model",
                        "created": state["created"],
                        "owned_by": "vllm-omni",
                        "root": model,
                        "parent": None,
                        "max_model_len": 4096,
                        "permission": [],
                    }
                ],
            }
        )

    async def health(request: Request) -> Response:
        return Response(b"", status_code=200)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": "0.11.0"})

    async def sleep(request: Request) -> Response:
        level = request.query_params.get("level", "1")
        if level not in ("1", "2"):
            return error(SpeechError(f"Invalid sleep level {level}", param="level"))
        state["sleeping"], state["sleep_level"] = True, int(level)
        return Response(b"", status_code=200)

    async def wake_up(request: Request) -> Response:
        state["sleeping"], state["sleep_level"] = False, 0
        return Response(b"", status_code=200)

    async def is_sleeping(request: Request) -> Response:
        return JSONResponse({"is_sleeping": state["sleeping"]})

    routes = [
        Route("/v1/audio/speech", speech, methods=["POST"]),
        Route("/v1/audio/voices", list_voices, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ping", health, methods=["GET", "POST"]),
        Route("/version", version, methods=["GET"]),
        Route("/sleep", sleep, methods=["POST"]),
        Route("/wake_up", wake_up, methods=["POST"]),
        Route("/is_sleeping", is_sleeping, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.tts = state
    return app
