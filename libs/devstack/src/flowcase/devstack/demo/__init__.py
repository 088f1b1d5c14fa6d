"""The demo workload `make up` seeds, so a first run shows something real.

`workload` plans the live requests (pure), `drift_history` writes the imported history whose
case resolution time drifts (pure), `seeder` drives both through the running stack's APIs and
the governance history import, `cli` is `flowcase demo seed`.
"""
