"""`python -m s3sim ...` is the `s3sim` command."""

import sys

from s3sim.cli import main

sys.exit(main())
