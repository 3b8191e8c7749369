"""The label-efficient transfer experiment behind ``make transfer``.

``chains`` names the pre-train -> convert -> fine-tune chains, ``configs``
rewrites their configs for the experiment's data and schedules, ``steps``
runs resumable subprocess steps, ``metrics`` reads the runs' scalars,
``experiment`` plans and runs the whole experiment and ``table`` renders
the README table and the history. The command line is
``tools/benchmarks/transfer.py``.
"""
