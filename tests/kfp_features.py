"""What the installed kfp's local runner can do: tests of newer kfp.local features skip on old kfp.

The kit supports kfp 2.14–2.17 (see README "Dependency ranges"); kfp.local gained caching and
ParallelFor in 2.17, so the tests that exercise those skip below it, saying why.
"""

import inspect

import kfp
import kfp.local
import pytest

LOCAL_CACHE = "enable_caching" in inspect.signature(kfp.local.init).parameters
LOCAL_PARALLEL_FOR = LOCAL_CACHE  # both arrived in kfp 2.17's local orchestrator

needs_local_cache = pytest.mark.skipif(
    not LOCAL_CACHE, reason=f"kfp {kfp.__version__}: kfp.local has no caching before 2.17"
)
needs_local_parallel_for = pytest.mark.skipif(
    not LOCAL_PARALLEL_FOR,
    reason=f"kfp {kfp.__version__}: kfp.local runs no ParallelFor before 2.17",
)
