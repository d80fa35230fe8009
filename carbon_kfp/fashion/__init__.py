"""The Fashion-MNIST example's data and model, shared by its components and ``benchmarks/``.

* :mod:`carbon_kfp.fashion.idx`: parse and check IDX files (pure functions over bytes);
* :mod:`carbon_kfp.fashion.data`: find, fetch, verify and cache the four files of a ``data_uri``
  and hand the arrays between steps;
* :mod:`carbon_kfp.fashion.model`: the Keras 3 CNN and the class names.

Not part of the tracker core: these modules import numpy (and :mod:`~carbon_kfp.fashion.model`
imports Keras when a model is built); ``import carbon_kfp`` never imports them. The dataset itself
is not shipped (Zalando Research, MIT licence): it is downloaded, or read from ``data_uri``.
"""
