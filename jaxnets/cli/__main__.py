"""``python -m jaxnets.cli``: the ``jaxnets`` command."""

import sys

from jaxnets.cli import main

if __name__ == "__main__":  # importing the module (tools that walk packages) runs nothing
    sys.exit(main())
