"""Who may talk to the bot: patterns, roles, per-room rules (pure, no homeserver)."""

from __future__ import annotations

from bridges.matrix.access import Access, matches
from bridges.matrix.format import edit_content, relation
from hub.config.matrix import MatrixConfig


def test_patterns_match_users_and_whole_servers():
    assert matches(["@*:example.org"], "@alice:example.org")
    assert not matches(["@*:example.org"], "@alice:evil.org")
    assert matches(["family.example.org"], "@bob:family.example.org")  # a bare server name
    assert not matches(["@alice:example.org"], "@alice:example.org.evil")


def test_roles_are_global_and_per_room():
    access = Access(MatrixConfig(
        owners=["@me:example.org"], allowed_users=["@*:family.example.org"],
        rooms={"!team:example.org": {"owners": ["@lead:work.org"], "users": ["@*:work.org"]}}))
    assert access.role("@me:example.org") == "owner"
    assert access.role("@kid:family.example.org") == "user"
    assert access.role("@dev:work.org", "!team:example.org") == "user"
    assert access.role("@lead:work.org", "!team:example.org") == "owner"
    assert access.role("@dev:work.org", "!other:example.org") is None  # only in the team room
    assert access.role("@stranger:evil.org", "!team:example.org") is None
    assert not access.may_invite("@dev:work.org", "!other:example.org")


def test_relations_thread_with_fallback_reply_and_edit_shape():
    assert relation("$root", "$q") == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
                                       "m.in_reply_to": {"event_id": "$q"}}
    assert relation(None, "$q") == {"m.in_reply_to": {"event_id": "$q"}}
    edit = edit_content("$orig", "new **text**")
    assert edit["body"] == "* new **text**" and edit["m.new_content"]["body"] == "new **text**"
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$orig"}
    assert "<strong>text</strong>" in edit["m.new_content"]["formatted_body"]
