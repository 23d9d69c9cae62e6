"""`python -m deploy`: see deploy/cli.py."""

import sys

from .cli import main

sys.exit(main())
