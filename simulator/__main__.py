"""``python -m simulator --port N [--profile FILE] [--state FILE] [--clouds-yaml PATH]``."""

import sys

from simulator.serve import main

sys.exit(main())
