"""Slash commands shared by every chat front end (Matrix bridge, the demo's terminal chat).

One declarative table (`table.COMMANDS`) plus the skills' own `command=` aliases from the registry;
`/help` and usage errors are generated from them.
"""

from hub.commands.dispatch import dispatch, help_text, is_command
from hub.commands.env import CommandEnv, CommandIO
from hub.commands.parser import UsageError
from hub.commands.settings import RoomSettings
from hub.commands.table import COMMANDS

__all__ = ["COMMANDS", "CommandEnv", "CommandIO", "RoomSettings", "UsageError", "dispatch", "help_text",
           "is_command"]
