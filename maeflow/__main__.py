import sys

from maeflow.cli import main

sys.exit(main())
