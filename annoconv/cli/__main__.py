"""`python -m annoconv.cli` runs the command line."""

from annoconv.cli.main import run

run()
