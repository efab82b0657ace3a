"""`python -m annoconv` runs the command line."""

from annoconv.cli import run

run()
