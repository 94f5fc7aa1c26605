"""Reference pages generated from the code, so that they cannot drift from it.

:func:`configuration_reference` renders every key of the config file from the settings models;
:func:`command_reference` renders the ``relaygate`` command's subcommands and flags from its parser.
The docs build calls both (``docs/hooks/generated.py``); they return Markdown.
"""

from relaygate.reference.commands import command_reference
from relaygate.reference.config import configuration_reference, settings_sections

__all__ = ["command_reference", "configuration_reference", "settings_sections"]
