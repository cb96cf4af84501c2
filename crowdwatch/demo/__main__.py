"""``python -m crowdwatch.demo [PATH]``: write the synthetic demo clip (crowdwatch.commands.demo)."""

import sys

from crowdwatch.commands.demo import main

sys.exit(main())
