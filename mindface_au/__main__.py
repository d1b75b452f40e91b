import sys

from mindface_au.cli import main

sys.exit(main())
