"""What the CLI prints: readable tables by default, ``--output json`` for scripts; errors on stderr with an exit code.

Exit codes (for scripts):

====  ==========================================================================
0     done (with ``--wait``: the instance reached the target status)
1     the service refused the request: its EAIS code and message are printed
2     the command line is wrong (unknown option, missing argument)
3     no usable credentials (or a malformed profile or credentials file)
4     ``--wait``: the instance ended in another status (the reason is printed)
5     ``--wait``: the target status was not reached within ``--timeout``
6     the endpoint did not answer
====  ==========================================================================
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from eais_cli.credentials import CredentialsError
from eais_cli.service import ServiceRefused, Unreachable

F = TypeVar("F", bound=Callable[..., Any])
EXIT_REFUSED, EXIT_CREDENTIALS, EXIT_WAIT_FAILED, EXIT_WAIT_TIMEOUT, EXIT_UNREACHABLE = 1, 3, 4, 5, 6


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class WaitFailed(Exception):
    """The instance ended in a status other than the one waited for (exit code 4)."""


class WaitTimedOut(Exception):
    """The target status was not reached in time (exit code 5)."""


def stdout() -> Console:
    # A pipe gets whole lines, not a table folded to 80 columns.
    return Console(width=None if sys.stdout.isatty() else 220, highlight=False, soft_wrap=not sys.stdout.isatty())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str = "") -> None:
    if not rows and empty:
        stdout().print(empty)
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column.endswith(("(CNY)", "%", "Seconds")) else "left")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout().print(table)


def fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def exits(command: F) -> F:
    """Turn the CLI's failures into a message on stderr and the documented exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ServiceRefused as error:
            request = f" (RequestId {error.request_id})" if error.request_id else ""
            raise fail(f"{error.code}: {error.message}{request}", EXIT_REFUSED) from None
        except CredentialsError as error:
            raise fail(str(error), EXIT_CREDENTIALS) from None
        except Unreachable as error:
            raise fail(str(error), EXIT_UNREACHABLE) from None
        except WaitFailed as error:
            raise fail(str(error), EXIT_WAIT_FAILED) from None
        except WaitTimedOut as error:
            raise fail(str(error), EXIT_WAIT_TIMEOUT) from None

    return run  # type: ignore[return-value]
