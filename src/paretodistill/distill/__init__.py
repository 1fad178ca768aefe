"""The distillation room: one trial (engine, run, losses).

Called, ``paretodistill.distill(...)`` distils one student (``paretodistill.api.distill``).
"""
