"""Audio tools shared by the podcast skill and the TTS stand-in: espeak-ng and ffmpeg as subprocesses."""

from __future__ import annotations

import asyncio
import shutil

from hub.errors import HubError

SAMPLE_RATE = 24000  # Voxtral's output rate; everything is mixed and encoded at it
PCM_FORMAT = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1"]  # ffmpeg's words for our raw PCM


class AudioError(HubError):
    pass


async def run_tool(cmd: list[str], data: bytes | None = None, timeout: float = 600) -> bytes:
    """Run an audio tool with `data` on stdin; its stdout, or an AudioError that says what failed."""
    out, _ = await run_tool_output(cmd, data, timeout)
    return out


async def run_tool_output(cmd: list[str], data: bytes | None = None, timeout: float = 600) -> tuple[bytes, str]:
    """(stdout, stderr) of an audio tool; ffmpeg's analysis filters report on stderr."""
    if shutil.which(cmd[0]) is None:
        raise AudioError(f"{cmd[0]} is not installed (needed for podcasts)")
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AudioError(f"{cmd[0]} took longer than {timeout:g} s") from None
    if proc.returncode != 0:
        raise AudioError(f"{cmd[0]} failed (exit {proc.returncode}): {err.decode(errors='replace').strip()[-300:]}")
    return out, err.decode(errors="replace")


ESPEAK_ARGV_MAX = 2000  # longer text goes through stdin (argv has a size limit; stdin has none)


def espeak_command(text: str, *, variant: str, pitch: int, wpm: int) -> tuple[list[str], bytes | None]:
    """espeak-ng's argv and stdin for `text`: never parsed as options (`--`, or stdin when long).

    Without `--`, text starting with "-" is read as espeak-ng options: it exits 0 with no audio.
    """
    cmd = ["espeak-ng", "-v", f"en-us+{variant}", "-s", str(wpm), "-p", str(pitch), "--stdout"]
    if len(text.encode()) > ESPEAK_ARGV_MAX or "\0" in text:
        return [*cmd, "--stdin"], text.replace("\0", " ").encode()
    return [*cmd, "--", text], None


async def espeak_pcm(text: str, *, variant: str, pitch: int, wpm: int) -> bytes:
    """espeak-ng speech resampled by ffmpeg to 24 kHz mono s16le PCM."""
    cmd, stdin = espeak_command(text, variant=variant, pitch=pitch, wpm=wpm)
    wav = await run_tool(cmd, stdin)
    if wav[:4] != b"RIFF" or len(wav) <= 44:
        raise AudioError(f"espeak-ng produced no audio for {text[:60]!r} ({len(wav)} bytes)")
    return await run_tool(["ffmpeg", "-v", "error", "-f", "wav", "-i", "pipe:0", *PCM_FORMAT, "pipe:1"], wav)


def pcm_input() -> list[str]:
    """ffmpeg arguments that read our raw PCM from stdin."""
    return [*PCM_FORMAT, "-i", "pipe:0"]
