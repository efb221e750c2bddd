"""The resident-model scheduler: which model server holds the GPU's memory, and when.

`policy.decide` is the pure decision; `runtime.ResidentScheduler` is `hub.gpu` when residents are
configured; `simulator` and `baselines` power `sovhub bench gpu`. See DESIGN.md.
"""
