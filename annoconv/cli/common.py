"""What every part of the command line shares: exit codes, the usage error and the parser
class that reports one in a line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Literal, NoReturn, TypeVar

from annoconv.errors import OptionError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: A shell's status for a process ended by SIGPIPE (128 + 13): its output's reader left.
EXIT_BROKEN_PIPE = 141
Direction = Literal["read", "write"]


class UsageError(OptionError):
    """A command line that cannot be run as given."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and where to look, not the whole usage block."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes a usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert
