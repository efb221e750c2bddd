"""The router is a pure function: precedence, failover, and local-only never reaching the cloud."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.chat.router import RouterInput, decide, split_prefix
from hub.config.routing import default_task_rules

RULES = tuple(default_task_rules())


def route(text="hello", **kw):
    return decide(RouterInput(text=text, rules=RULES, **kw))


def test_precedence_local_only_then_explicit_then_pin_then_rules_then_default():
    assert route("debug this", override="local").target == "local"
    refused = route("hi", override="cloud", room_policy="local-only", privacy_refusal="This room is local-only.")
    assert refused.target == "none" and refused.refused == "This room is local-only."  # local-only beats explicit
    assert route("hi", override="cloud", room_policy="cloud").target == "cloud"
    assert route("debug this", room_policy="local-only").reason == "room is local-only"
    assert route("debug this", room_policy="local").reason == "room pinned to local"
    assert route("quick question", room_policy="cloud").target == "cloud"
    r = route("what is the root cause here?")
    assert r.target == "cloud" and r.reason == "task class 'debugging' (matched 'root cause')"
    assert route("draft a summary").target == "local"
    assert route("hello").reason == "default route"


def test_the_reason_names_where_the_policy_was_set_not_always_the_room():
    assert route("hi", room_policy="local", policy_source="default").reason == "hub default policy is local"
    assert route("hi", room_policy="local-only", policy_source="default").reason == "hub default is local-only"
    assert route("hi", room_policy="local-only", policy_source="caller").reason == "caller is local-only"
    assert route("hi", room_policy="cloud", policy_source="config-room").reason == \
        "room pinned to cloud in the config's routing.rooms"
    assert route("hi", room_policy="local", policy_source="room").reason == "room pinned to local"


def test_the_verdict_says_where_a_non_auto_policy_came_from():
    from hub.privacy import resolve
    assert resolve(default="local").source == "default"
    assert resolve(default="auto", pinned="cloud").source == "config-room"
    assert resolve(default="local", room="cloud").source == "room"
    assert resolve(default="auto", caller="local").source == "caller"
    assert resolve(default="auto").source is None


def test_local_down_or_gpu_held_goes_to_claude_when_the_room_allows():
    r = route(local_health="down")
    assert r.target == "cloud" and "local model is down → Claude" in r.reason
    r = route(gpu_blocker="the GPU is busy with comfyui", gpu_eta_s=200)
    assert r.target == "cloud" and "busy with comfyui → Claude" in r.reason
    assert route().fallback == "cloud"


def test_local_only_room_with_gpu_held_waits_with_an_eta_notice():
    r = route(room_policy="local-only", gpu_blocker="the GPU is busy with comfyui", gpu_eta_s=200)
    assert r.target == "local" and r.wait and r.eta_s == 200 and r.fallback is None
    assert r.notice == "The GPU is busy with comfyui; your turn is queued (ETA ~3 min)."


def test_explicit_local_never_fails_over_to_the_cloud():
    assert route(override="local").fallback is None
    r = route(override="local", gpu_blocker="the GPU is busy with tts", gpu_eta_s=30)
    assert r.target == "local" and r.wait and "~30 s" in r.notice


def test_cloud_down_or_over_budget_goes_local():
    r = route("root cause?", cloud_state="down", cloud_note="Claude is failing (529)")
    assert r.target == "local" and "Claude is failing (529) → local" in r.reason
    r = route(override="cloud", budget_ok=False, budget_note="the daily cloud budget is reached")
    assert r.target == "local" and r.avoided == "the daily cloud budget is reached"
    r = route(override="cloud", budget_ok=False, budget_note="over", local_health="down")
    assert r.target == "none"
    assert route(override="cloud").fallback == "local"


def test_no_fallback_to_cloud_when_it_is_over_budget():
    assert route(budget_ok=False, budget_note="over").fallback is None


def test_prefixes_are_split_from_the_text():
    assert split_prefix("!claude why is the sky blue") == ("why is the sky blue", "cloud")
    assert split_prefix("!LOCAL hi") == ("hi", "local")
    assert split_prefix("!claudette hi") == ("!claudette hi", None)


@given(text=st.text(max_size=40), local=st.sampled_from(["up", "down", "unknown"]),
       blocker=st.sampled_from([None, "the GPU is busy with comfyui"]),
       cloud=st.sampled_from(["up", "down", "disabled"]),
       budget=st.booleans(), override=st.sampled_from([None, "local", "cloud"]))
def test_a_local_only_room_never_routes_or_fails_over_to_the_cloud(text, local, blocker, cloud, budget, override):
    r = route(text, room_policy="local-only", local_health=local, gpu_blocker=blocker, cloud_state=cloud,
              budget_ok=budget, override=override)
    assert r.target in ("local", "none") and r.fallback != "cloud"
