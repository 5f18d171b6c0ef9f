"""``python -m jaxnets.cli``: the ``jaxnets`` command."""

import sys

from jaxnets.cli import main

sys.exit(main())
