"""The vllm-omni speech stand-in answers the OpenAI speech API with real 24 kHz mono audio."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import wave

import httpx
import openai
import pytest

from hub.sim.serve import serve_app
from hub.sim.tts import DEFAULT_MODEL, SAMPLE_RATE, create_app


def wav_seconds(data: bytes) -> tuple[float, int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate(), w.getframerate(), w.getnchannels()


@pytest.fixture
async def tts_url():
    async with serve_app(create_app()) as url:
        yield url


async def test_openai_sdk_gets_24khz_mono_wav_speech_with_usage_headers(tts_url):
    client = openai.AsyncOpenAI(base_url=tts_url + "/v1", api_key="EMPTY")
    resp = await client.audio.speech.with_raw_response.create(
        model=DEFAULT_MODEL, voice="neutral_male", input="Hello from the box under the desk.", response_format="wav"
    )
    data = resp.content
    seconds, rate, channels = wav_seconds(data)
    assert (rate, channels) == (SAMPLE_RATE, 1)
    assert 1.0 < seconds < 6.0
    assert resp.headers["content-type"] == "audio/wav"
    assert int(resp.headers["x-vllm-omni-output-tokens"]) > 0


async def test_unknown_voice_is_an_openai_style_400_naming_the_voice(tts_url):
    client = openai.AsyncOpenAI(base_url=tts_url + "/v1", api_key="EMPTY")
    with pytest.raises(openai.BadRequestError) as err:
        await client.audio.speech.create(model=DEFAULT_MODEL, voice="darth_vader", input="hi")
    body = err.value.body
    assert "darth_vader" in body["message"] and body["param"] == "voice" and body["code"] == 400


@pytest.mark.parametrize(
    "patch, param",
    [
        ({"speed": 5.0}, "speed"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"response_format": "aiff"}, "response_format"),
        ({"stream": True, "response_format": "mp3"}, "response_format"),
        ({"input": " "}, "input"),
    ],
)
async def test_out_of_range_parameters_are_rejected_with_the_param_named(tts_url, patch, param):
    body = {"input": "hi", "voice": "casual_female", **patch}
    async with httpx.AsyncClient() as http:
        resp = await http.post(tts_url + "/v1/audio/speech", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param


async def test_max_new_tokens_caps_the_audio_length(tts_url):
    text = "This sentence is long enough to take several seconds when it is spoken aloud by the engine."
    async with httpx.AsyncClient(timeout=30) as http:
        full = await http.post(tts_url + "/v1/audio/speech", json={"input": text, "voice": "casual_male"})
        short = await http.post(
            tts_url + "/v1/audio/speech", json={"input": text, "voice": "casual_male", "max_new_tokens": 10}
        )
    assert wav_seconds(full.content)[0] > 2.0
    assert wav_seconds(short.content)[0] == pytest.approx(10 / 12.5, abs=0.01)


async def test_mp3_output_is_decodable_at_24khz(tts_url, tmp_path):
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            tts_url + "/v1/audio/speech",
            json={"input": "Testing mp3.", "voice": "cheerful_female", "response_format": "mp3"},
        )
    assert resp.headers["content-type"] == "audio/mpeg"
    path = tmp_path / "a.mp3"
    path.write_bytes(resp.content)
    cmd = ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, check=True)
    probe = json.loads(done.stdout)
    stream = probe["streams"][0]
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("mp3", "24000", 1)


async def test_sse_stream_sends_base64_pcm_deltas_then_done_with_usage(tts_url):
    deltas, events = b"", []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            tts_url + "/v1/audio/speech",
            json={"input": "Streaming words.", "voice": "casual_female", "response_format": "pcm", "stream": True},
        ) as resp,
    ):
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if data["type"] == "speech.audio.delta":
                    deltas += base64.b64decode(data["audio"])
                else:
                    usage = data["usage"]
    assert events[-1] == "speech.audio.done" and set(events[:-1]) == {"speech.audio.delta"}
    assert len(deltas) > SAMPLE_RATE // 2 and len(deltas) % 2 == 0
    assert usage["output_tokens"] > 0


async def test_voices_models_health_and_sleep_endpoints(tts_url):
    async with httpx.AsyncClient() as http:
        voices = (await http.get(tts_url + "/v1/audio/voices")).json()
        assert "neutral_female" in voices["voices"] and voices["uploaded_voices"] == []
        assert (await http.get(tts_url + "/v1/models")).json()["data"][0]["id"] == DEFAULT_MODEL
        assert (await http.get(tts_url + "/health")).status_code == 200
        assert (await http.post(tts_url + "/sleep", params={"level": 1})).status_code == 200
        assert (await http.get(tts_url + "/is_sleeping")).json() == {"is_sleeping": True}
        asleep = await http.post(tts_url + "/v1/audio/speech", json={"input": "hi", "voice": "casual_male"})
        assert asleep.status_code == 503
        assert (await http.post(tts_url + "/wake_up")).status_code == 200
        assert (await http.get(tts_url + "/is_sleeping")).json() == {"is_sleeping": False}


async def test_tone_engine_gives_real_audio_without_espeak():
    async with serve_app(create_app(engine="tone")) as url, httpx.AsyncClient() as http:
        resp = await http.post(url + "/v1/audio/speech", json={"input": "x" * 50, "voice": "casual_male"})
    seconds, rate, _ = wav_seconds(resp.content)
    assert rate == SAMPLE_RATE and seconds == pytest.approx(3.0, abs=0.01)


async def test_speed_shortens_speech_and_raw_audio_streaming_sends_a_wav(tts_url):
    text = "Speed changes how long this sentence takes to say out loud."
    async with httpx.AsyncClient(timeout=30) as http:
        normal = await http.post(tts_url + "/v1/audio/speech", json={"input": text, "voice": "casual_male"})
        fast = await http.post(tts_url + "/v1/audio/speech", json={"input": text, "voice": "casual_male", "speed": 2.0})
        raw = b""
        async with http.stream(
            "POST",
            tts_url + "/v1/audio/speech",
            json={"input": text, "voice": "casual_male", "stream_format": "audio", "response_format": "wav"},
        ) as resp:
            assert resp.headers["content-type"] == "audio/wav"
            async for piece in resp.aiter_bytes():
                raw += piece
    assert wav_seconds(fast.content)[0] < 0.75 * wav_seconds(normal.content)[0]
    assert raw[:4] == b"RIFF" and len(raw) - 44 == len(normal.content) - 44
