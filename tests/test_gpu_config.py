"""The `residents:` section as the scheduler reads it: exclusivity in the shipped GB10 profile and the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub.config import check_config
from hub.config.residents import ResidentsConfig
from hub.demo.fleet import SimFleet
from hub.gpu.runtime import ResidentScheduler

REPO = Path(__file__).resolve().parents[1]


def _residents(name: str) -> ResidentsConfig:
    """The shipped file's `residents:` section (the rest needs secrets this machine has not got)."""
    return ResidentsConfig.model_validate(yaml.safe_load((REPO / "config" / name).read_text())["residents"])


def _scheduler(residents, tmp_path) -> ResidentScheduler:
    return ResidentScheduler.from_config(residents, state_dir=tmp_path)


def test_the_gb10_profile_keeps_every_model_server_resident_alone(tmp_path):
    sched = _scheduler(_residents("hub.gb10.yaml"), tmp_path)
    specs = sched.state.specs
    assert set(specs) == {"sglang", "comfyui", "vllm-omni"}
    assert all(s.exclusive for s in specs.values())
    # the memory figures alone would let SGLang and vllm-omni share the pool
    assert specs["sglang"].memory_gb + specs["vllm-omni"].memory_gb <= 128 - 8


def test_the_demo_fleet_follows_the_one_at_a_time_rule(tmp_path):
    fleet = SimFleet(tmp_path)
    assert all(r["exclusive"] for name, r in fleet.residents_config().items() if isinstance(r, dict)
               and "kind" in r)


def test_co_residency_stays_for_who_configures_it(tmp_path):
    specs = _scheduler(_residents("hub.example.yaml"), tmp_path).state.specs
    assert not any(s.exclusive for s in specs.values())


def test_an_exclusive_resident_next_to_a_pinned_one_is_rejected_clearly(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(
        "residents:\n"
        "  a:\n    kind: llm\n    memory_gb: 10\n    base_url: http://127.0.0.1:1\n"
        "    ready: {url: http://127.0.0.1:1/health}\n    pinned: true\n"
        "  b:\n    kind: tts\n    memory_gb: 10\n    base_url: http://127.0.0.1:2\n"
        "    ready: {url: http://127.0.0.1:2/health}\n    exclusive: true\n"
    )
    issues = [str(i) for i in check_config(path, environ={})]
    assert any("b is exclusive but a is pinned" in i for i in issues), issues


@pytest.mark.parametrize("flag", ["true", "false"])
def test_exclusive_is_a_plain_boolean_key(tmp_path, flag):
    path = tmp_path / "hub.yaml"
    path.write_text(
        "residents:\n"
        "  a:\n    kind: llm\n    memory_gb: 10\n    base_url: http://127.0.0.1:1\n"
        f"    ready: {{url: http://127.0.0.1:1/health}}\n    exclusive: {flag}\n"
    )
    assert check_config(path, environ={}) == []


def test_the_conversation_hold_and_the_min_slice_are_configurable_and_checked(tmp_path):
    base = yaml.safe_load((REPO / "config" / "hub.gb10.yaml").read_text())["residents"]
    sched = _scheduler(ResidentsConfig.model_validate({**base, "conversation_s": 45, "min_slice_s": 20}), tmp_path)
    assert sched.state.params.conversation_s == 45 and sched.state.params.min_slice_s == 20
    assert _scheduler(_residents("hub.gb10.yaml"), tmp_path).state.params.conversation_s == 120
    with pytest.raises(ValueError, match=r"conversation_s 2000 must be shorter than max_wait_s\.skill"):
        ResidentsConfig.model_validate({**base, "conversation_s": 2000})
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ResidentsConfig.model_validate({**base, "conversation_s": -1})
    with pytest.raises(ValueError, match=r"min_slice_s 300 must be shorter than max_wait_s\.interactive"):
        ResidentsConfig.model_validate({**base, "min_slice_s": 300})
