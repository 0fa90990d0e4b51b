"""`python -m voice_gateway.cli`."""

import sys

from voice_gateway.cli import main

sys.exit(main())
