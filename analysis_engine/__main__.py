import sys

from analysis_engine.cli import main

sys.exit(main())
