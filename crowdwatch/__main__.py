import sys

from crowdwatch.cli import main

sys.exit(main())
