"""Chat on a full disk: an answered turn is kept until it can be saved, the next one is refused clearly."""

from __future__ import annotations

from hub.chat.api import ConversationKey
from tests.chat_helpers import chat_bed
from tests.storage_helpers import fill_disk, free_disk

REFUSAL = ("Storage full: the hub cannot save this conversation (database or disk is full), so nothing was sent "
           "to a model. Free space on the data disk (storage.data_dir). Answers already given are kept and saved "
           "once the store can write again.")


async def test_a_full_disk_keeps_the_answered_turn_and_refuses_the_next_one_without_calling_a_model(tmp_path):
    async with chat_bed(tmp_path) as bed:
        hub = bed.hub
        first = "first " * 2000  # needs fresh pages
        await fill_disk(hub.store)
        _, sink = await bed.turn(first)
        assert sink.of("finish") and not sink.of("fail")  # the answer was already given
        await hub.chat.settled()  # returns: a failing write does not hang readers
        assert hub.store.health.state == "full"

        calls = await bed.local_requests()
        outcome, sink = await bed.turn("second")
        assert sink.of("fail") == [REFUSAL] and outcome.error == REFUSAL
        assert await bed.local_requests() == calls
        status = await hub.status()
        assert status["storage"]["state"] == "full"

        await free_disk(hub.store)
        _, sink = await bed.turn("third")
        assert sink.of("finish") and not sink.of("fail")
        await hub.chat.settled()
        _, history = await hub.chat.memory.load(ConversationKey("matrix", "!room:x", None))
        assert [m.content for m in history if m.role == "user"] == [first, "third"]  # kept, once, in order
        assert hub.store.health.state == "ok"


async def test_a_turn_kept_unsaved_at_shutdown_does_not_hang_the_stop(tmp_path):
    async with chat_bed(tmp_path) as bed:
        await fill_disk(bed.hub.store)
        _, sink = await bed.turn("lost " * 2000)
        assert sink.of("finish")
        await bed.hub.chat.settled()
    # chat_bed stopped the hub: reaching this line is the assertion
