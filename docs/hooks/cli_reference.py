"""MkDocs hook: the CLI reference page, generated from the argparse parsers of ``avsa.cli``.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it
with one section per command of :data:`avsa.cli.COMMANDS`, each the command's
``--help`` as ``avsa <command> --help`` prints it (the parser is built the way
:func:`avsa.cli.main` builds it), so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import importlib
import os

MARKER = "<!-- cli-reference -->"
WIDTH = "100"  # columns of the rendered help text


def cli_reference() -> str:
    """The Markdown of every command's help, in the order of ``avsa --help``."""
    os.environ["COLUMNS"] = WIDTH  # argparse wraps help at the terminal's width
    from avsa import cli

    parts = ["## avsa", "", "```text", cli.build_parser().format_help().rstrip(), "```", ""]
    for name, (module_name, help_text) in cli.COMMANDS.items():
        parts += [f"## avsa {name}", ""]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                parts += [f"{help_text} (not available in this version).", ""]
                continue
            raise
        parser = argparse.ArgumentParser(prog=f"avsa {name}", description=help_text)
        module.add_arguments(parser)
        parts += ["```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "cli.md" and MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
