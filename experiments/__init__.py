"""Runnable experiments: `python -m experiments.<name>`.

Importing this package changes nothing in the process: the environment defaults the experiments
want (one OpenBLAS thread, one jax CPU device per core) are set by each `main()` through
`experiments.host.set_defaults`, so a notebook or test that imports a study keeps its own.
"""
