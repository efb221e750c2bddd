"""The Matrix bridge: sync loop, exactly-once inbox, access, commands and streamed chat turns.

Imperative shell around small parts: `client` (connection), `inbox` (exactly once), `access`
(who), `sink` (streaming edits), `approvals` (reactions), `media` (uploads), `hub.commands`
(the one command table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nio import InviteMemberEvent, MegolmEvent, ReactionEvent, RoomMemberEvent, SyncResponse
from nio.events import Event

from bridges.matrix.access import Access
from bridges.matrix.addressing import BotNames, is_mentioned, message_text, strip_mention
from bridges.matrix.approvals import Approvals
from bridges.matrix.client import MatrixConnection, TokenRevoked
from bridges.matrix.format import edit_content, message_content, notice_content, relation, with_relation
from bridges.matrix.inbox import Inbox, InboxEvent
from bridges.matrix.media import media_content
from bridges.matrix.sink import MatrixReplySink
from hub.approval import grant_for_role
from hub.chat.api import ConversationKey, TurnRequest
from hub.commands import CommandEnv, RoomSettings, dispatch, is_command
from hub.context import Context

log = logging.getLogger(__name__)

BRIDGE = "matrix"
STATE_REACTIONS = {"started": "⏳", "succeeded": "✅", "failed": "❌"}
QUOTE_CHARS = 1500  # how much of a thread root / replied-to message goes into the turn


class MatrixCommandIO:
    """CommandIO bound to one request: answers in its thread, reacts on it, edits one progress line."""

    def __init__(self, bridge: MatrixBridge, ev: InboxEvent, rel: dict | None, thread_root: str | None,
                 msgtype: str = "m.notice") -> None:
        self.bridge = bridge
        self.ev = ev
        self.rel = rel
        self.thread_root = thread_root
        self.msgtype = msgtype
        self._progress_id: str | None = None
        self._replies = 0
        self._files = 0

    async def _send(self, content: dict, txn: str | None = None) -> str:
        event_id = await self.bridge.conn.send(self.ev.room_id, with_relation(content, self.rel), txn_id=txn)
        await self.bridge.remember(event_id, self.ev.room_id, self.thread_root, self.ev.event_id)
        return event_id

    async def reply(self, text: str) -> None:
        self._replies += 1
        content = message_content(text, self.msgtype)
        if self.msgtype == "m.text":
            content["m.mentions"] = {"user_ids": [self.ev.sender]}  # notifies the asker, even in a group
        await self._send(content, txn=f"sovhub.{self.ev.event_id}.r{self._replies}")

    async def job_state(self, state: str) -> None:
        key = STATE_REACTIONS.get(state)
        if key:
            await self.bridge.react(self.ev.room_id, self.ev.event_id, key)

    async def progress(self, text: str) -> None:
        if self._progress_id is None:
            self._progress_id = await self._send(notice_content(text), txn=f"sovhub.{self.ev.event_id}.progress")
        else:
            await self.bridge.conn.send(self.ev.room_id, edit_content(self._progress_id, text))

    async def send_file(self, path: Path, *, kind: str, caption: str) -> None:
        self._files += 1
        content = await media_content(self.bridge.conn, self.ev.room_id, path, kind, caption)
        await self._send(content, txn=f"sovhub.{self.ev.event_id}.f{self._files}")


class MatrixBridge:
    def __init__(self, hub, *, store_dir: Path | None = None) -> None:
        self.hub = hub
        self.config = hub.config.matrix
        self.store_dir = store_dir or self.config.store_dir or (hub.config.storage.root / "matrix")
        self.conn = MatrixConnection(self.config, Path(self.store_dir).expanduser())
        self.inbox = Inbox(hub.store)
        self.settings = RoomSettings(hub.store, BRIDGE)
        self.access = Access(self.config)
        self.approvals = Approvals(self.conn, lambda u, r: self.access.role(u, r) == "owner",
                                   self.config.approval_timeout_s, on_sent=self._remember_plain)
        self.metrics: Counter[str] = Counter()
        self.synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._workers: set[asyncio.Task] = set()
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._undecrypted: dict[str, tuple[str, MegolmEvent]] = {}
        self._notified: set[str] = set()
        self._replaying: set[str] = set()  # answers begun before a restart: resent whole, never streamed
        self._stopping = False
        self.last_sync_at: float | None = None
        # Where an answer's time goes, for `sovhub bench matrix`: (event id, sync received, first
        # message send started, send returned), perf_counter seconds. Bounded; never persisted.
        self.timings: deque[tuple[str, float, float, float]] = deque(maxlen=2000)
        self._arrived: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.conn.login()
        await self.inbox.prune()
        self.hub.extras["matrix"] = self
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def stop(self) -> None:
        self._stopping = True
        self.approvals.cancel_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for task in list(self._workers):
            task.cancel()
        if self._workers:
            await asyncio.wait(list(self._workers), timeout=5)
        self.hub.extras.pop("matrix", None)
        await self.conn.close()

    def status(self) -> dict[str, Any]:
        """For `/status`, `sovhub status` and metrics: undecryptable events are counted, not hidden."""
        return {
            "user": self.conn.user_id,
            "synced": self.synced.is_set(),
            "last_sync_s_ago": round(time.time() - self.last_sync_at, 1) if self.last_sync_at else None,
            "undecryptable": self.metrics["undecryptable"],
            "answered": self.metrics["answered"],
            "ignored_senders": self.metrics["ignored_sender"],
            "waiting_approvals": self.approvals.waiting,
        }

    # -- sync loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        token = await self.inbox.sync_token()
        first_ever = token is None
        backoff = 1.0
        full_state = True
        # Messages recorded before a crash are answered first (exactly once, see inbox.py), once the
        # first sync has loaded room state (members, encryption) into the client.
        replay = await self.inbox.pending()
        while not self._stopping:
            try:
                resp = await self.conn.sync(token, 0 if full_state else self.config.sync_timeout_ms,
                                            full_state=full_state)
                if full_state:
                    await self.conn.housekeeping()  # keys before the first encrypted reply
                await self._on_sync(resp, history=first_ever, replay=replay)
                replay = []
                await self.inbox.save_token(resp.next_batch)
                token, first_ever, full_state = resp.next_batch, False, False
                self.last_sync_at = time.time()
                self.synced.set()
                await self.conn.housekeeping()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except TokenRevoked as exc:
                log.warning("%s; logging in again", exc)
                self.metrics["relogins"] += 1
                try:
                    await self.conn.relogin()
                    full_state = True
                    continue
                except Exception:
                    log.exception("matrix: logging in again failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
            except Exception:
                log.exception("matrix sync failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)

    async def _on_sync(self, resp: SyncResponse, *, history: bool, replay: Sequence[InboxEvent] = ()) -> None:
        received = time.perf_counter()
        me = self.conn.user_id
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info.invite_state)
        fresh: list[InboxEvent] = []
        for room_id, info in resp.rooms.join.items():
            events = list(info.timeline.events)
            # Ignore what happened before we joined (history shown to a newly joined member).
            for i in range(len(events) - 1, -1, -1):
                e = events[i]
                if isinstance(e, RoomMemberEvent) and e.state_key == me and e.membership == "join" and (
                        (e.prev_membership or "") != "join"):
                    events = events[i + 1:]
                    break
            if history:
                continue  # first start ever: nothing from before is answered
            for e in events:
                if isinstance(e, MegolmEvent):
                    self._undecryptable(room_id, e)
                    continue
                if isinstance(e, ReactionEvent):
                    self._on_reaction(room_id, e)
                    continue
                item = self._inbox_item(room_id, e)
                if item is not None:
                    fresh.append(item)
        fresh.extend(self._retry_undecrypted())
        self._replaying.update(ev.event_id for ev in replay)
        for ev in [*replay, *await self.inbox.add(fresh)]:
            if len(self._arrived) < 4000:
                self._arrived[ev.event_id] = received
            self._spawn(self._handle(ev))

    def _inbox_item(self, room_id: str, e: Event) -> InboxEvent | None:
        src = e.source or {}
        if e.sender == self.conn.user_id or src.get("type", "m.room.message") != "m.room.message":
            return None
        content = src.get("content") or {}
        if content.get("msgtype") not in ("m.text", "m.emote"):
            return None  # notices are bots talking; media and edits are not questions
        if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
            return None
        return InboxEvent(e.event_id, room_id, e.sender, e.server_timestamp,
                          {"type": "m.room.message", "event_id": e.event_id, "sender": e.sender,
                           "origin_server_ts": e.server_timestamp, "content": content})

    def _undecryptable(self, room_id: str, e: MegolmEvent) -> None:
        if e.event_id in self._undecrypted:
            return
        self.metrics["undecryptable"] += 1
        log.warning("undecryptable event %s in %s from %s (session %s)", e.event_id, room_id, e.sender,
                    e.session_id)
        self._undecrypted[e.event_id] = (room_id, e)
        with contextlib.suppress(Exception):
            self._spawn(self.conn.client.request_room_key(e))

    def _retry_undecrypted(self) -> list[InboxEvent]:
        """Events whose keys arrived later are answered then (and stop counting as a failure)."""
        out = []
        for event_id, (room_id, e) in list(self._undecrypted.items()):
            try:
                decrypted = self.conn.client.decrypt_event(e)
            except Exception:
                continue
            self._undecrypted.pop(event_id, None)
            self.metrics["undecryptable"] -= 1
            self.metrics["decrypted_late"] += 1
            item = self._inbox_item(room_id, decrypted)
            if item is not None:
                out.append(item)
        return out

    async def _on_invite(self, room_id: str, state: list) -> None:
        me = self.conn.user_id
        inviter = next((ev.sender for ev in state if isinstance(ev, InviteMemberEvent)
                        and ev.state_key == me and ev.membership == "invite"), None)
        if inviter and self.access.may_invite(inviter, room_id):
            resp = await self.conn.client.join(room_id)
            log.info("joined %s (invited by %s): %s", room_id, inviter, type(resp).__name__)
        else:
            self.metrics["declined_invites"] += 1
            log.info("declined invite to %s from %s", room_id, inviter)
            await self.conn.client.room_leave(room_id)

    def _on_reaction(self, room_id: str, e: ReactionEvent) -> None:
        if e.sender != self.conn.user_id:
            self.approvals.on_reaction(room_id, e.sender, e.reacts_to, e.key)

    # -- handling one message ---------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _handle(self, ev: InboxEvent) -> None:
        lock = self._room_locks.setdefault(ev.room_id, asyncio.Lock())
        async with lock:  # one room answers in order; rooms run in parallel
            try:
                outcome = await self._answer(ev)
            except asyncio.CancelledError:
                raise  # stays pending: answered after the restart
            except Exception as exc:
                log.exception("answering %s failed", ev.event_id)
                outcome = f"error: {type(exc).__name__}"
                with contextlib.suppress(Exception):
                    await self.conn.send(ev.room_id, with_relation(
                        notice_content(f"⚠️ Sorry, answering this failed ({_short(exc)}). "
                                       "The hub log has the details."), relation(*self._thread_of(ev))),
                        txn_id=f"sovhub.{ev.event_id}.err")
            self._arrived.pop(ev.event_id, None)
            self._replaying.discard(ev.event_id)
            await self.inbox.finish(ev.event_id, outcome)
            self.metrics[outcome if outcome in ("answered", "command") else "skipped"] += 1

    @staticmethod
    def _thread_of(ev: InboxEvent) -> tuple[str | None, str | None]:
        rel = ev.content.get("m.relates_to") or {}
        if rel.get("rel_type") == "m.thread":
            return rel.get("event_id"), ev.event_id
        return None, ev.event_id

    def _names(self, room_id: str) -> BotNames:
        me = self.conn.user_id
        room = self.conn.client.rooms.get(room_id)
        user = room.users.get(me) if room is not None else None
        return BotNames(me, getattr(user, "display_name", None))

    def _is_dm(self, room_id: str) -> bool:
        room = self.conn.client.rooms.get(room_id)
        return room is not None and room.member_count <= 2

    async def _addressed_as(self, ev: InboxEvent, body: str, thread_root: str | None) -> str | None:
        """How a message is addressed to the bot (`dm`, `command`, `mention`, `reply`, `thread`), or None."""
        if self._is_dm(ev.room_id):
            return "dm"  # every message is for the bot
        if is_command(body):
            return "command"
        if is_mentioned(ev.content, self._names(ev.room_id)):
            return "mention"
        reply_to = self._reply_to(ev)
        if reply_to and await self.inbox.is_ours(reply_to):
            return "reply"
        if thread_root and await self.inbox.in_our_thread(ev.room_id, thread_root):
            return "thread"
        return None

    @staticmethod
    def _reply_to(ev: InboxEvent) -> str | None:
        """The event a message really replies to (a thread's reply fallback is not a reply)."""
        rel = ev.content.get("m.relates_to") or {}
        if rel.get("rel_type") == "m.thread" and rel.get("is_falling_back", True):
            return None
        return (rel.get("m.in_reply_to") or {}).get("event_id")

    async def _msgtype(self, room_id: str) -> str:
        """`m.text` notifies the asker (push rules skip `m.notice`): the default for answers."""
        notify = await self.settings.get(room_id, "notify")
        return "m.notice" if notify == "off" else "m.text"

    async def _answer(self, ev: InboxEvent) -> str:
        role = self.access.role(ev.sender, ev.room_id)
        if role is None:
            self.metrics["ignored_sender"] += 1
            await self._maybe_notify_unknown(ev)
            return "ignored: sender not allowed"
        body = message_text(ev.content)
        thread_root, _ = self._thread_of(ev)
        addressed = await self._addressed_as(ev, body, thread_root)
        if addressed is None:
            return "ignored: not addressed to the bot"
        asked_in_thread = thread_root
        mode = await self.settings.get(ev.room_id, "thread_mode")
        if thread_root is None and mode == "always":
            thread_root = ev.event_id  # start a thread per question
        elif mode == "off":
            thread_root = None  # answer in the main timeline, as a reply
        rel = relation(thread_root, ev.event_id)
        context = Context.new(BRIDGE, user=ev.sender)
        conversation = self._conversation(ev.room_id, thread_root)
        text = strip_mention(body, self._names(ev.room_id))
        msgtype = await self._msgtype(ev.room_id)
        io = MatrixCommandIO(self, ev, rel, thread_root, msgtype)
        env = CommandEnv(
            hub=self.hub, context=context, io=io, conversation=conversation, role=role, settings=self.settings,
            approver=self._approver(ev.room_id, rel),
            run_turn=lambda t, override: self._turn(ev, t, override, rel, thread_root, context, role, msgtype),
            status_extra=lambda: {"matrix": self.status()},
            request_id=f"{BRIDGE}:{ev.event_id}",  # a replayed command follows its job, never reruns it
        )
        if await dispatch(env, text):
            return "command"
        text = await self._with_quoted(ev, text, asked_in_thread)
        await self._turn(ev, text, None, rel, thread_root, context, role, msgtype)
        return "answered"

    async def _with_quoted(self, ev: InboxEvent, text: str, thread_root: str | None) -> str:
        """The question as the model sees it: with the thread's root when the bot is new to the thread
        (the question being discussed), and with the message it replies to when that is not the bot's."""
        quoted = []
        if thread_root and thread_root != ev.event_id and not await self.inbox.in_our_thread(ev.room_id,
                                                                                           thread_root):
            root = await self._event_text(ev.room_id, thread_root)
            if root:
                quoted.append(f"[The thread started with {root[0]} writing: {root[1]}]")
        reply_to = self._reply_to(ev)
        if reply_to and reply_to != thread_root and not await self.inbox.is_ours(reply_to):
            replied = await self._event_text(ev.room_id, reply_to)
            if replied:
                quoted.append(f"[In reply to {replied[0]}: {replied[1]}]")
        return "\n".join(quoted) + f"\n\n{text}" if quoted else text

    async def _event_text(self, room_id: str, event_id: str) -> tuple[str, str] | None:
        """(sender, body) of an earlier message: from the inbox when it passed through it, else fetched
        from the homeserver (and decrypted in an encrypted room). None when it cannot be read."""
        source = await self.inbox.source(event_id)
        if source is None:
            try:
                resp = await self.conn.client.room_get_event(room_id, event_id)
                event = getattr(resp, "event", None)
                if isinstance(event, MegolmEvent):
                    event = self.conn.client.decrypt_event(event)
            except Exception as exc:
                log.info("could not read %s in %s: %s", event_id, room_id, exc)
                return None
            if event is None:
                return None
            source = {"sender": event.sender, "content": (event.source or {}).get("content") or {}}
        body = message_text(source.get("content") or {})
        if not body:
            return None
        if len(body) > QUOTE_CHARS:
            body = body[:QUOTE_CHARS] + "…"
        return str(source.get("sender") or "someone"), body

    def _conversation(self, room_id: str, thread_root: str | None):
        return ConversationKey(BRIDGE, room_id, thread_root)

    def _approver(self, room_id: str, rel: dict | None):
        async def approve(skill, params, ctx) -> bool:
            dumped = params.model_dump(mode="json") if hasattr(params, "model_dump") else dict(params or {})
            return await self.approvals.ask(room_id, rel, skill.name, dumped)

        return approve

    async def _turn(self, ev: InboxEvent, text: str, override: str | None, rel: dict | None,
                    thread_root: str | None, context: Context, role: str, msgtype: str = "m.text") -> None:
        if self.hub.chat is None:
            raise RuntimeError("the chat service is not running")
        # the room's own setting only: the chat service's privacy gate adds the config's pins and default
        policy = await self.settings.get(ev.room_id, "policy") or "auto"
        sink = MatrixReplySink(
            self.conn, ev.room_id, rel, f"sovhub.{ev.event_id}" + (f".{override}" if override else ""),
            edit_interval_s=self.config.edit_interval_s, max_chars=self.config.max_message_chars,
            on_sent=lambda eid: self.remember(eid, ev.room_id, thread_root, ev.event_id), msgtype=msgtype,
            mentions=[ev.sender] if msgtype == "m.text" else None, replay=ev.event_id in self._replaying)
        request = TurnRequest(text=text, context=context, conversation=self._conversation(ev.room_id, thread_root),
                              room_policy=policy, override=override,
                              grant=grant_for_role(role),
                              approver=self._approver(ev.room_id, rel),
                              request_id=f"{BRIDGE}:{ev.event_id}")  # a replayed turn never reruns a write tool
        try:
            await sink.start()
            await self.hub.chat.turn(request, sink)
            if not sink.finished:
                await sink.finish(sink.text)
        finally:
            await sink.close()
        arrived = self._arrived.get(ev.event_id)
        if arrived is not None and sink.first_send is not None:
            self.timings.append((ev.event_id, arrived, *sink.first_send))

    # -- helpers ----------------------------------------------------------------------------------
    async def remember(self, event_id: str, room_id: str, thread_root: str | None, reply_to: str | None) -> None:
        await self.inbox.remember_sent(event_id, room_id, thread_root, reply_to)

    async def _remember_plain(self, event_id: str, room_id: str) -> None:
        await self.inbox.remember_sent(event_id, room_id, None, None)

    async def react(self, room_id: str, event_id: str, key: str) -> None:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        try:
            await self.conn.send(room_id, content, event_type="m.reaction", txn_id=f"sovhub.{event_id}.{key}")
        except Exception as exc:
            log.debug("reaction failed: %s", exc)

    async def _maybe_notify_unknown(self, ev: InboxEvent) -> None:
        room = self.conn.client.rooms.get(ev.room_id)
        if not self.config.notify_unknown_senders or room is None or room.member_count > 2:
            return
        if ev.sender in self._notified:
            return
        self._notified.add(ev.sender)
        await self.conn.send(ev.room_id, notice_content(
            "Sorry, I only answer people on my allow list. Ask my owner to add you."),
            txn_id=f"sovhub.{ev.event_id}.unknown")

    async def announce(self, text: str, room: str | None = None, files: list[dict] | None = None) -> list[str]:
        """Post to `room`, or to every room that receives announcements (plus the configured one).

        Each file follows the text as the artifact itself (m.image / m.audio / m.file, uploaded
        encrypted in an encrypted room), not as a path nobody in the room can open.
        """
        if room:
            rooms = {room}
        else:
            rooms = set(await self.settings.rooms_with("announce", "on"))
            if self.config.announce_room:
                rooms.add(self.config.announce_room)
        sent = []
        for room_id in sorted(rooms):
            if room_id not in self.conn.client.rooms:
                continue
            sent.append(await self.conn.send(room_id, notice_content(text)))
            for item in files or []:
                path = Path(item["path"])
                if not path.is_file():
                    log.warning("announcement file %s is gone; not uploaded", path)
                    continue
                try:
                    content = await media_content(self.conn, room_id, path, item.get("kind", "file"), path.name)
                    sent.append(await self.conn.send(room_id, content))
                except Exception as exc:  # the text is out; a failed upload must not hide the others
                    log.warning("announcement upload of %s to %s failed: %s", path.name, room_id, exc)
        return sent


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "…"
