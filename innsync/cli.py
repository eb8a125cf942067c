"""The `innsync` command line. Sub-commands live next to the code they drive."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="innsync channel manager and backups")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
