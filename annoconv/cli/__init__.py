"""The `annoconv` command: a thin layer over the Python API.

`parser` builds the command line (the flags of format options are made from the formats' own
option models by `flags`, grouped by format in ``--help``, so a format, built in or a plugin,
brings its flags with it); `commands` calls the API for each command and prints; `main` turns
errors into one line and an exit code. Checks live in the library: the command line only
parses, calls the API and prints.

Exit codes: 0 success, 1 conversion error (bad input, unknown classes, I/O), 2 usage error
(a bad flag or option, raised before anything is written). Errors print as one line on
stderr; `--debug` shows the traceback.
"""

from annoconv.cli.main import main, run
from annoconv.cli.parser import build_parser

__all__ = ["build_parser", "main", "run"]
