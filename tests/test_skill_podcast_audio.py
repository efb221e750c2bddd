"""Episodes sound right: espeak-ng never reads text as options, loudness lands on target (measured
by ffmpeg's own ebur128 filter), and no chunk is silently cut at the speech server's output cap."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.audio import AudioError, espeak_command, espeak_pcm
from hub.config.model import HubConfig
from hub.context import Context
from hub.sim import tts
from skills.content.audio import EspeakEngine, VllmOmniEngine, chunk_problem, encode_episode, synth_checked
from tests.helpers_content import content_config, content_hub, stand_in


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ffmpeg itself reports them: the witness, not our parser."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = err[err.rindex("Summary:") :]
    return (
        float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
        float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)),
    )


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=3000))
def test_espeak_never_sees_the_text_where_an_option_could_be(text):
    cmd, stdin = espeak_command(text, variant="m3", pitch=50, wpm=165)
    if stdin is None:
        assert cmd[-2:] == ["--", text]  # after `--` nothing is an option
    else:
        assert cmd[-1] == "--stdin" and stdin == text.replace("\0", " ").encode()
        assert text not in cmd


@pytest.mark.parametrize("text", ["-v is how you pick a voice.", "--stdout is the flag we use.", "- a list item"])
async def test_text_starting_with_a_dash_is_spoken_not_taken_for_options(text):
    pcm = await espeak_pcm(text, variant="m3", pitch=50, wpm=165)
    assert len(pcm) / 48000 > 0.9  # spoken, not an empty WAV


async def test_long_text_goes_through_stdin_and_is_spoken_whole():
    text = " ".join(f"Sentence number {i} is here." for i in range(100))  # > 2,000 characters
    assert espeak_command(text, variant="m3", pitch=50, wpm=165)[1] is not None
    seconds = len(await espeak_pcm(text, variant="m3", pitch=50, wpm=330)) / 48000
    short = len(await espeak_pcm("Sentence number 7 is here.", variant="m3", pitch=50, wpm=330)) / 48000
    assert seconds > 80 * short  # about a hundred sentences' worth


async def speech(seconds_of_text: int, gain: float) -> bytes:
    """espeak-ng PCM with its level scaled by `gain` (a quiet or a hot recording)."""
    text = " ".join(f"Paragraph {i} is about unified memory and model swaps." for i in range(seconds_of_text // 3))
    pcm = await espeak_pcm(text, variant="f3", pitch=50, wpm=165)
    from array import array

    samples = array("h", pcm)
    for i, v in enumerate(samples):
        samples[i] = max(-32768, min(32767, int(v * gain)))
    return samples.tobytes()


@pytest.mark.parametrize(
    ("fmt", "gain", "target"),
    [("mp3", 1.0, -16.0), ("opus", 0.08, -16.0), ("mp3", 3.0, -19.0)],
    ids=["mp3-as-spoken", "opus-very-quiet", "mp3-clipping-hot-to-minus-19"],
)
async def test_episode_loudness_lands_on_target_with_true_peak_under_minus_one(tmp_path, fmt, gain, target):
    out = tmp_path / f"episode.{fmt}"
    reported = await encode_episode(await speech(24, gain), out, fmt, title="t", artist="a", lufs=target)
    integrated, peak = ebur128(out)
    assert abs(integrated - target) <= 0.5 and peak <= -1.0, (integrated, peak)
    assert reported == (integrated, peak)


def test_chunk_sizes_the_speech_server_cannot_speak_in_one_request_are_refused():
    base = {"storage": {"data_dir": "/tmp/x"}}
    with pytest.raises(ValidationError, match=r"tts_chunk_chars 4000 .*163.8 s.*max_new_tokens 2048.*at most 1638"):
        HubConfig.model_validate({**base, "skills": {"content": {"tts_engine": "vllm-omni", "tts_chunk_chars": 4000}}})
    ok = {"tts_engine": "vllm-omni", "tts_chunk_chars": 3000, "tts_max_new_tokens": 4096}
    assert HubConfig.model_validate({**base, "skills": {"content": ok}}).skills.content.tts_chunk_chars == 3000
    espeak = {"tts_engine": "espeak", "tts_chunk_chars": 4000}  # espeak-ng has no output cap
    assert HubConfig.model_validate({**base, "skills": {"content": espeak}})


YEARS = " ".join(f"In {y}, {y + 1}, {y + 2} and {y + 3} it grew." for y in range(1960, 1984, 4))


async def test_a_chunk_cut_at_the_output_cap_is_spoken_again_in_parts(tmp_path):
    # 100 codec frames = 8 s per request; lists of years are slow to say (about 5 characters a second)
    # (config validation allows 80 characters: 8 s at a slow 10 a second)
    async with stand_in(tts) as speech_url:
        config = content_config(
            tmp_path, tts=speech_url, tts_engine="vllm-omni", tts_chunk_chars=80, tts_max_new_tokens=100
        )
        async with content_hub(config) as hub:
            result = await hub.run_skill(
                "render_podcast", {"article": YEARS, "rewrite": False}, Context.new("cli")
            )
            job = (await hub.jobs.list(1))[0]
            logs = [e["data"] for e in await hub.jobs.events(job.id) if e["type"] == "log"]
    assert any("spoken again in parts" in str(entry) for entry in logs)
    assert all(s < 0.98 * 8 for s in result.chunk_seconds)  # no part stopped at the cap
    assert result.duration_s == pytest.approx(sum(result.chunk_seconds), abs=0.1)
    assert sum(result.chunk_seconds) > len(YEARS) / 8  # all of it was said, at about 5 characters a second


async def test_a_chunk_that_stays_cut_fails_the_job_with_the_reason(tmp_path):
    async with stand_in(tts) as url:
        engine = VllmOmniEngine(url, tts.DEFAULT_MODEL, "casual_male", max_new_tokens=4)  # 0.32 s a request
        reason = r"chunk 3/9[.\d]* \(\d+ characters\) stopped at 0.3 s.*max_new_tokens 4.*even split 3 time"
        with pytest.raises(AudioError, match=reason):
            await synth_checked(engine, "Nineteen ninety-seven was a long year indeed.", "3/9")


def test_audio_far_too_short_for_its_text_is_a_problem_and_normal_speech_is_not():
    engine = EspeakEngine("casual_male")
    text = "A sentence of about sixty letters, said at an ordinary pace. " * 4
    assert chunk_problem(engine, text, 2.0) is not None
    assert chunk_problem(engine, text, 14.0) is None
    assert chunk_problem(engine, "Short.", 0.2) is None
