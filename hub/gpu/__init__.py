"""The resident-model scheduler: which model server holds the GPU's memory, and when.

`policy.decide` is the pure decision; `runtime.ResidentScheduler` is `hub.gpu` when residents are
configured; the simulator and baselines behind `sovhub bench gpu` live in `hub/bench/gpusim/`. See DESIGN.md.
"""
