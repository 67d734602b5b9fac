import sys

from gnnmask.cli import main

sys.exit(main())
