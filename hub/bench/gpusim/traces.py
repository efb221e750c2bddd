"""Seedable workloads for the simulator: who asks for which resident, when, for how long.

A trace is a list of sessions. A session is one hub job or one client: steps submitted one after
another, each after the previous one finished (closed loop). A pipeline (an article: LLM, images,
LLM; a podcast: LLM script, then one TTS lease for all its chunks, as `skills/content/podcast.py`
holds it) declares each next step's resident (`then=`), as the hub's pipelines do; baselines
ignore that. A chat conversation is a session of turns with think time between an answer and the
next question; it declares nothing. A turn in an `auto` room goes to Claude when the LLM is not
resident at that moment (another resident holds the GPU, or the LLM is still loading), as the
router does; `local` rooms queue for the LLM.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.gpu.model import ResidentSpec

HOUR = 3600.0


@dataclass(frozen=True)
class Step:
    resident: str
    est_s: float  # what the job declares
    actual_s: float  # what it really takes in the simulation
    think_s: float = 0.0  # client time between the previous step's end and this request
    chunks: int = 1  # a lease made of this many equal chunks (a podcast's TTS): it may yield between two


@dataclass(frozen=True)
class Session:
    id: str
    arrival: float
    job_class: str
    steps: tuple[Step, ...]
    priority: float = 0.0
    kind: str = ""
    declares_next: bool = True  # a pipeline names its next step's resident (`then=`); a chat does not
    auto: bool = False  # a chat turn in an `auto` room: Claude answers when the LLM is not resident
    cancel_after_s: float | None = None  # the client gives up on a step not started by then


@dataclass(frozen=True)
class Trace:
    name: str
    seed: int
    horizon_s: float
    sessions: tuple[Session, ...]
    residents: tuple[ResidentSpec, ...]
    load_s: dict[str, float] = field(default_factory=dict)  # true start-to-ready times
    unload_s: dict[str, float] = field(default_factory=dict)  # true stop-to-memory-back times


def gb10_residents() -> tuple[ResidentSpec, ...]:
    """The three servers that take turns on the GB10: each is exclusive (the box's one-at-a-time rule)."""
    return (
        ResidentSpec("sglang", "llm", memory_gb=94, default=True, exclusive=True, concurrency=8,
                     swap_in_s=180, swap_out_s=40),
        ResidentSpec("comfyui", "image", memory_gb=32, exclusive=True, concurrency=1, swap_in_s=30, swap_out_s=10),
        ResidentSpec("tts", "tts", memory_gb=24, exclusive=True, concurrency=2, swap_in_s=45, swap_out_s=10),
    )


LOAD_S = {"sglang": 180.0, "comfyui": 30.0, "tts": 45.0}
UNLOAD_S = {"sglang": 40.0, "comfyui": 8.0, "tts": 8.0}


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sessions: list[Session] = []

    def dur(self, mean: float, spread: float = 0.35) -> tuple[float, float]:
        """(declared estimate, actual) for a job whose typical length is `mean` seconds."""
        actual = mean * self.rng.lognormvariate(0.0, spread)
        return mean, max(1.0, round(actual, 1))

    def step(self, resident: str, mean: float, think: float = 0.0, spread: float = 0.35, chunks: int = 1) -> Step:
        est, actual = self.dur(mean, spread)
        return Step(resident, est, actual, think, chunks)

    def add(self, kind: str, at: float, job_class: str, steps: list[Step], priority: float = 0.0):
        self.sessions.append(Session(f"{kind}-{len(self.sessions)}", round(at, 1), job_class,
                                     tuple(steps), priority, kind))

    def poisson(self, rate_per_h: float, start: float, end: float):
        t = start
        while True:
            t += self.rng.expovariate(rate_per_h / HOUR)
            if t >= end:
                return
            yield t

    def chat_conversations(self, rate_per_h: float, start: float, end: float, auto_share: float = 0.0,
                           turns: tuple[int, int] = (1, 5), think: tuple[float, float] = (20, 120)) -> None:
        """Conversations of a few turns, closed loop: the next question comes `think` seconds after
        the answer. A share of them happen in `auto` rooms (Claude answers while the LLM is away)."""
        for t in self.poisson(rate_per_h, start, end):
            n = self.rng.randint(*turns)
            steps = [self.step("sglang", 15, 0.0 if k == 0 else self.rng.uniform(*think)) for k in range(n)]
            auto = self.rng.random() < auto_share
            self.sessions.append(Session(f"chat-{len(self.sessions)}", round(t, 1), "interactive", tuple(steps),
                                         kind="chat-auto" if auto else "chat", declares_next=False, auto=auto))

    def podcast(self, at: float, chunks: int, job_class: str = "skill", kind: str = "podcast") -> None:
        """The script on the LLM, then one TTS lease that renders every chunk (about 15 s each) and
        declares a checkpoint after each, as `skills/content/podcast.py` does."""
        script = self.step("sglang", 150)
        self.add(kind, at, job_class, [script, self.step("tts", 15 * chunks, spread=0.2, chunks=chunks)])

    def images(self, at: float, n: int, job_class: str = "skill", kind: str = "image") -> None:
        self.add(kind, at, job_class, [self.step("comfyui", 20) for _ in range(n)])

    def daily_routine(self) -> None:
        """The box's timetable: the 06:00 and 18:00 crons (article with its images, a briefing podcast)
        that start together, two podcasts asked for during the day, a digest every two hours."""
        for at in (6 * HOUR, 18 * HOUR):
            article = [self.step("sglang", 240)] + [self.step("comfyui", 25) for _ in range(self.rng.randint(2, 4))]
            self.add("article", at, "scheduled", [*article, self.step("sglang", 90)])
            self.podcast(at, chunks=self.rng.randint(16, 30), job_class="scheduled", kind="briefing")
        for t in sorted(self.rng.uniform(9 * HOUR, 21 * HOUR) for _ in range(2)):
            self.podcast(t, chunks=self.rng.randint(16, 30))
        for h in range(0, 24, 2):
            self.add("digest", h * HOUR + 300, "scheduled", [self.step("sglang", 60)])

    def build(self, name: str, seed: int, horizon: float) -> Trace:
        sessions = tuple(sorted(self.sessions, key=lambda s: (s.arrival, s.id)))
        return Trace(name, seed, horizon, sessions, gb10_residents(), dict(LOAD_S), dict(UNLOAD_S))


def mixed(seed: int = 1) -> Trace:
    """A day: chat conversations in `local` rooms (every turn queues for the LLM); the 06:00 and
    18:00 crons (article pipeline with its images, a briefing podcast, a digest) that start
    together; podcast renders and images asked for in chat."""
    g = _Gen(seed)
    day = 24 * HOUR
    g.chat_conversations(4, 7 * HOUR, 23 * HOUR)
    g.daily_routine()
    for t in g.poisson(0.5, 8 * HOUR, 22 * HOUR):
        g.images(t, g.rng.randint(1, 4), kind="chat-image")
    return g.build("mixed", seed, day)


def bursty(seed: int = 1) -> Trace:
    """Agent bursts that touch several residents at once (A B A A C A B C), plus some chat."""
    g = _Gen(seed)
    horizon = 6 * HOUR
    g.chat_conversations(2, 0, horizon)
    means = {"sglang": 40, "comfyui": 20, "tts": 30}
    for t in g.poisson(3, 0, horizon):
        for _ in range(g.rng.randint(4, 10)):
            r = g.rng.choices(list(means), weights=[5, 3, 2])[0]
            g.add("agent", t, "skill", [g.step(r, means[r])])
            t += g.rng.uniform(0, 5)
    return g.build("bursty", seed, horizon)


def day(seed: int = 1) -> Trace:
    """A realistic day on the GB10 with the router's defaults: most rooms are `auto` (70 % of the
    conversations; Claude answers them while another resident holds the GPU), the rest `local`;
    longer conversations with think time; the 06:00 and 18:00 crons (article with images, briefing
    podcast), digests every two hours, two podcasts and chat images asked for during the day, and
    an evening image batch of 30-50 images."""
    g = _Gen(seed)
    g.chat_conversations(5, 7 * HOUR, 23.5 * HOUR, auto_share=0.7, turns=(1, 8), think=(15, 240))
    g.daily_routine()
    for t in g.poisson(0.7, 8 * HOUR, 22 * HOUR):
        g.images(t, g.rng.randint(1, 4), kind="chat-image")
    g.images(g.rng.uniform(19.5 * HOUR, 21 * HOUR), g.rng.randint(30, 50), kind="batch")
    return g.build("day", seed, 24 * HOUR)


def image_batch(seed: int = 1) -> Trace:
    """A long image batch (one image after another) interleaved with interactive chat."""
    g = _Gen(seed)
    horizon = 4 * HOUR
    g.chat_conversations(3, 0, horizon)
    g.images(15 * 60, 120, kind="batch")
    g.images(2.5 * HOUR, 60, kind="batch")
    return g.build("image-batch", seed, horizon)


TRACES: dict[str, Callable[[int], Trace]] = {"mixed": mixed, "bursty": bursty, "image-batch": image_batch,
                                             "day": day}


def make(name: str, seed: int = 1) -> Trace:
    try:
        return TRACES[name](seed)
    except KeyError:
        raise ValueError(f"unknown trace {name!r} (known: {', '.join(TRACES)})") from None
