"""``python -m carbon_kfp.cli``: the ``carbon-kfp`` script."""

import sys

from carbon_kfp.cli import main

sys.exit(main())
