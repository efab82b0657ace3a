"""`python -m annoconv` runs the command line."""

import sys

from annoconv.cli import main

sys.exit(main())
