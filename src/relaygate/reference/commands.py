"""The command-line reference: every ``relaygate`` subcommand and flag, rendered from the parser itself."""

from __future__ import annotations

import argparse

__all__ = ["command_reference"]


def command_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown of each subcommand: a heading, its usage and a table of its arguments."""
    if parser is None:
        from relaygate.cli import build_parser

        parser = build_parser()
    out: list[str] = []
    for name, command, summary in _commands(parser, parser.prog):
        if not _arguments(command) and _subparsers(command) is not None:
            continue  # a group of subcommands (`relaygate keys`): its members have sections of their own
        out += [f"## `{name}`", ""]
        if summary:
            out += [summary[0].upper() + summary[1:] + ".", ""]
        out += ["```text", command.format_usage().strip(), "```", ""]
        rows = [_row(action) for action in _arguments(command)]
        if rows:
            out += ["| argument | default | what it does |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(out)


def _commands(
    parser: argparse.ArgumentParser, name: str, summary: str = ""
) -> list[tuple[str, argparse.ArgumentParser, str]]:
    out = [(name, parser, summary)]
    subparsers = _subparsers(parser)
    if subparsers is not None:
        helps = {choice.dest: choice.help or "" for choice in subparsers._choices_actions}
        for child_name, child in subparsers.choices.items():
            out += _commands(child, f"{name} {child_name}", helps.get(child_name, ""))
    return out


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and action.help != argparse.SUPPRESS
    ]


def _row(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        if action.nargs != 0:
            flags += f" `{action.metavar or action.dest.upper()}`"
    else:
        flags = f"`{action.metavar or action.dest}`"
    default = "" if action.default in (None, argparse.SUPPRESS) else f"`{action.default}`"
    text = action.help or ""
    if action.choices:
        text += " (one of " + ", ".join(f"`{choice}`" for choice in action.choices) + ")"
    text = text.replace("|", "\\|")
    return f"| {flags} | {default} | {text} |"
