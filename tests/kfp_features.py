"""Whether the installed kfp's local runner can run the kit's pipelines (kfp 2.17 and later).

The kit supports kfp 2.14–2.17 (README "Dependency ranges"), but kfp.local gained dsl.If,
ParallelFor, optional artifact inputs and caching in 2.17: tests that run pipelines locally skip
below it, saying why, while the component, compile and exec tests run on every supported kfp.
"""

import kfp
import pytest

from carbon_kfp.errors import ConfigError
from carbon_kfp.kfp.local_run import check_local_runner


def _local_runner_ok() -> bool:
    try:
        check_local_runner(kfp.__version__)
    except ConfigError:
        return False
    return True


needs_full_kfp_local = pytest.mark.skipif(
    not _local_runner_ok(),
    reason=f"kfp {kfp.__version__}: kfp.local runs dsl.If, ParallelFor, optional inputs and "
    "caching from 2.17",
)
