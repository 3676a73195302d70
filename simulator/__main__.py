"""`python -m simulator` is `acudevice-sim`."""

import sys

from simulator.cli import main

sys.exit(main())
