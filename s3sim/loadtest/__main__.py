import sys

from s3sim.loadtest.cli import main

sys.exit(main())
